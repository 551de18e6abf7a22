package config_test

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/config"
)

// envExamplePath is the configuration reference, at the repository root.
const envExamplePath = "../../.env.example"

// testSectionMarker starts the part of .env.example that lists variables read
// only by tests, benchmarks and drills, never by config.Load.
const testSectionMarker = "# --- Tests, benchmarks and drills"

// testOnlyVariables are the variables of that section: internal/pgtest,
// internal/redistest, internal/bench and internal/drill read them.
var testOnlyVariables = []string{"TEST_DATABASE_URL", "TEST_PGBOUNCER_URL", "TEST_REDIS_URL"}

var assignment = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)

// envExample is .env.example read the way `make dev` and docker compose read
// a .env: NAME=value lines, values optionally in quotes, # comments.
type envExample struct {
	processes map[string]string // variables before the test section
	testOnly  map[string]string // variables after it
	problems  []string          // duplicates and lines that are not NAME=value
}

func readEnvExample(t *testing.T) envExample {
	t.Helper()
	f, err := os.Open(envExamplePath)
	require.NoError(t, err, ".env.example is the configuration reference and must exist")
	defer f.Close()

	ex := envExample{processes: map[string]string{}, testOnly: map[string]string{}}
	section := ex.processes
	sawMarker := false
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, testSectionMarker):
			section, sawMarker = ex.testOnly, true
			continue
		case line == "" || strings.HasPrefix(line, "#"):
			continue
		}
		m := assignment.FindStringSubmatch(line)
		if m == nil {
			ex.problems = append(ex.problems, fmt.Sprintf(".env.example line %d is not NAME=value: %s", n, line))
			continue
		}
		name, value := m[1], unquote(m[2])
		_, inProcesses := ex.processes[name]
		_, inTests := ex.testOnly[name]
		if inProcesses || inTests {
			ex.problems = append(ex.problems, name+" is listed twice in .env.example")
		}
		section[name] = value
	}
	require.NoError(t, sc.Err())
	require.True(t, sawMarker, ".env.example has no %q section", testSectionMarker)
	return ex
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

// variablesLoadReads calls config.Load with a getenv that records every name
// asked for, once with an empty environment and once with env, so a variable
// read only when another one is set is found too.
func variablesLoadReads(env map[string]string) []string {
	seen := map[string]bool{}
	for _, kv := range []map[string]string{nil, env} {
		_, _ = config.Load(func(name string) string {
			seen[name] = true
			return kv[name]
		})
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestEnvExampleIsTheConfigurationReference keeps .env.example and config.Load
// in agreement: every variable Load reads is documented there, and nothing
// else is, apart from the test section's explicit list.
func TestEnvExampleIsTheConfigurationReference(t *testing.T) {
	ex := readEnvExample(t)
	assert.Empty(t, ex.problems)

	read := variablesLoadReads(ex.processes)
	require.NotEmpty(t, read, "config.Load read no variable at all")
	listed := sortedKeys(ex.processes)

	var undocumented, unread []string
	for _, name := range read {
		if _, ok := ex.processes[name]; !ok {
			undocumented = append(undocumented, name)
		}
	}
	for _, name := range listed {
		if !slices.Contains(read, name) {
			unread = append(unread, name)
		}
	}
	assert.Empty(t, undocumented, "config.Load reads these, and .env.example does not list them (above %q)", testSectionMarker)
	assert.Empty(t, unread, ".env.example lists these, and config.Load never reads them: remove them, or move a test-only one below %q and into testOnlyVariables", testSectionMarker)

	assert.ElementsMatch(t, testOnlyVariables, sortedKeys(ex.testOnly),
		"the variables under %q must be exactly testOnlyVariables", testSectionMarker)
	for _, name := range testOnlyVariables {
		assert.NotContains(t, read, name, "%s is in the test section, but config.Load reads it", name)
	}
}

// TestEnvExampleValuesAreTheDefaults checks that .env.example, copied to .env
// as it is, configures every process exactly as no .env at all would, apart
// from the development webhook secret (the web process has no default for it).
func TestEnvExampleValuesAreTheDefaults(t *testing.T) {
	ex := readEnvExample(t)

	fromExample, err := config.Load(func(name string) string { return ex.processes[name] })
	require.NoError(t, err, ".env.example holds a value config.Load refuses")
	defaults, err := config.Load(func(string) string { return "" })
	require.NoError(t, err)

	assert.NotEmpty(t, fromExample.StripeWebhookSecrets, "make dev needs a development STRIPE_WEBHOOK_SECRET in .env.example")
	fromExample.StripeWebhookSecrets = nil
	assert.Equal(t, defaults, fromExample, ".env.example says a default that config.Load does not have")
}
