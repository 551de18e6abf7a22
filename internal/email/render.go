package email

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"reflect"
	"regexp"
	"sort"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/cleantrack/jobs/templates"
)

// Data is a template's data struct. Validate names the required fields that
// are empty, so an incomplete email fails to render instead of going out
// with blanks.
type Data interface {
	Validate() error
}

// dataTypes maps each template to the type of its data.
var dataTypes = map[string]reflect.Type{
	TemplateWelcome:       reflect.TypeFor[WelcomeData](),
	TemplateOverdueAlert:  reflect.TypeFor[OverdueAlertData](),
	TemplatePaymentFailed: reflect.TypeFor[PaymentFailedData](),
	TemplateWeeklySummary: reflect.TypeFor[WeeklySummaryData](),
}

// ErrUnknownTemplate is returned for a template name CleanTrack does not have.
var ErrUnknownTemplate = errors.New("unknown email template")

// Templates lists the template names, sorted.
func Templates() []string {
	names := make([]string, 0, len(dataTypes))
	for n := range dataTypes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DecodeData decodes raw JSON into the data struct of template name. Unknown
// fields are ignored, so a payload from a newer release still renders.
func DecodeData(name string, raw []byte) (Data, error) {
	return decodeData(name, raw, false)
}

func decodeData(name string, raw []byte, strict bool) (Data, error) {
	typ, ok := dataTypes[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (have %s)", ErrUnknownTemplate, name, strings.Join(Templates(), ", "))
	}
	ptr := reflect.New(typ)
	dec := json.NewDecoder(bytes.NewReader(raw))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(ptr.Interface()); err != nil {
		return nil, fmt.Errorf("decode %s data: %w", name, err)
	}
	return ptr.Elem().Interface().(Data), nil
}

// Message is a rendered email.
type Message struct {
	Subject string
	HTML    string
	Text    string
}

// Renderer renders CleanTrack's embedded email templates. It is safe for
// concurrent use; build one per process with NewRenderer.
type Renderer struct {
	html map[string]*htmltemplate.Template
	text map[string]*texttemplate.Template
}

// NewRenderer parses every template under templates/emails: for each name,
// base_email.html with <name>.html, and base_email.txt with <name>.txt (which
// also defines the subject).
func NewRenderer() (*Renderer, error) {
	return newRenderer(templates.FS)
}

func newRenderer(fsys fs.FS) (*Renderer, error) {
	r := &Renderer{html: map[string]*htmltemplate.Template{}, text: map[string]*texttemplate.Template{}}
	for name := range dataTypes {
		h, err := htmltemplate.New(name).Funcs(htmltemplate.FuncMap(funcs())).
			Funcs(htmltemplate.FuncMap{"subject": func() string { return "" }}).
			ParseFS(fsys, "emails/base_email.html", "emails/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse %s.html: %w", name, err)
		}
		t, err := texttemplate.New(name).Funcs(texttemplate.FuncMap(funcs())).
			ParseFS(fsys, "emails/base_email.txt", "emails/"+name+".txt")
		if err != nil {
			return nil, fmt.Errorf("parse %s.txt: %w", name, err)
		}
		for _, def := range []string{"base", "content", "subject"} {
			if t.Lookup(def) == nil {
				return nil, fmt.Errorf("%s.txt: no %q template defined", name, def)
			}
		}
		for _, def := range []string{"base", "content", "preheader"} {
			if h.Lookup(def) == nil {
				return nil, fmt.Errorf("%s.html: no %q template defined", name, def)
			}
		}
		r.html[name], r.text[name] = h, t
	}
	return r, nil
}

// funcs are the helpers templates may call. Dates take the zone explicitly
// (the data's Timezone) so every date is shown in the account's time.
func funcs() map[string]any {
	return map[string]any{
		"date":     func(t any, tz string) (string, error) { return formatIn(dateLayout, t, tz) },
		"datetime": func(t any, tz string) (string, error) { return formatIn(dateTimeLayout, t, tz) },
		// lastday shows the last day of a period given by its exclusive end.
		"lastday": func(t time.Time, tz string) (string, error) { return formatIn(dateLayout, t.Add(-time.Nanosecond), tz) },
		"money":   FormatMoney,
		"plural":  plural,
		"percent": percent,
		"inc":     func(i int) int { return i + 1 },
		"upper":   strings.ToUpper,
		"link":    func(url, label string) link { return link{URL: url, Label: label} },
	}
}

// link is the data of the shared "button" template.
type link struct {
	URL   string
	Label string
}

// Render validates data and renders template name. data must be the
// template's data struct (or a pointer to it). A missing required field, an
// unknown time zone or a template error is returned as an error: no partial
// email is produced.
func (r *Renderer) Render(name string, data any) (Message, error) {
	typ, ok := dataTypes[name]
	if !ok {
		return Message{}, fmt.Errorf("%w %q", ErrUnknownTemplate, name)
	}
	v := reflect.ValueOf(data)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Type() != typ {
		return Message{}, fmt.Errorf("render %s: data is %T, want %s", name, data, typ)
	}
	d := v.Interface().(Data)
	if err := d.Validate(); err != nil {
		return Message{}, fmt.Errorf("render %w", err)
	}

	var subj bytes.Buffer
	if err := r.text[name].ExecuteTemplate(&subj, "subject", d); err != nil {
		return Message{}, fmt.Errorf("render %s subject: %w", name, err)
	}
	subject := strings.Join(strings.Fields(subj.String()), " ")
	if subject == "" {
		return Message{}, fmt.Errorf("render %s: empty subject", name)
	}

	var text bytes.Buffer
	if err := r.text[name].ExecuteTemplate(&text, "base", d); err != nil {
		return Message{}, fmt.Errorf("render %s text: %w", name, err)
	}

	// html/template refuses to Clone a template once executed, so the parsed
	// set is never executed: each render runs a clone carrying its subject.
	h, err := r.html[name].Clone()
	if err != nil {
		return Message{}, fmt.Errorf("render %s html: %w", name, err)
	}
	h.Funcs(htmltemplate.FuncMap{"subject": func() string { return subject }})
	var html bytes.Buffer
	if err := h.ExecuteTemplate(&html, "base", d); err != nil {
		return Message{}, fmt.Errorf("render %s html: %w", name, err)
	}
	return Message{Subject: subject, HTML: tidyHTML(html.String()), Text: tidyText(text.String())}, nil
}

var blankLines = regexp.MustCompile(`\n{3,}`)

// tidyText trims trailing spaces and collapses runs of blank lines that
// template actions leave behind, and ends the text with one newline.
func tidyText(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t")
	}
	s = blankLines.ReplaceAllString(strings.Join(lines, "\n"), "\n\n")
	return strings.TrimSpace(s) + "\n"
}

// tidyHTML drops the blank lines template actions leave behind.
func tidyHTML(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		out = append(out, strings.TrimRight(l, " \t"))
	}
	return strings.Join(out, "\n") + "\n"
}
