package email

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDisplayName(t *testing.T) {
	for _, tc := range []struct{ first, last, want string }{
		{"Ada", "Lovelace", "Ada Lovelace"},
		{"Ada", "", "Ada"},
		{"", "Lovelace", "Lovelace"},
		{"", "", ""},
		{" Ada ", "  ", "Ada"},
	} {
		assert.Equal(t, tc.want, DisplayName(tc.first, tc.last), "%q %q", tc.first, tc.last)
	}
}

// Without a name the templates greet generically, never with an address.
func TestTemplatesGreetWithoutAName(t *testing.T) {
	r, err := NewRenderer()
	require.NoError(t, err)
	for _, name := range Templates() {
		data, err := SampleData(name, "https://app.example.com")
		require.NoError(t, err, name)
		switch d := data.(type) {
		case WelcomeData:
			d.UserName = ""
			data = d
		case OverdueAlertData:
			d.UserName = ""
			data = d
		case PaymentFailedData:
			d.UserName = ""
			data = d
		case WeeklySummaryData:
			d.UserName = ""
			data = d
		}
		msg, err := r.Render(name, data)
		require.NoError(t, err, name)
		assert.Contains(t, msg.Text, "Hello,\n", name)
		assert.Contains(t, msg.HTML, ">Hello,</p>", name)
	}
}
