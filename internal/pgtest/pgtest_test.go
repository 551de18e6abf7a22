package pgtest_test

import (
	"database/sql"
	"os"
	"os/exec"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/pgtest"
)

// helperEnv makes this test binary, run again as a child, create a database
// and then end its test the way the variable says.
const helperEnv = "PGTEST_HELPER_ENDING"

// endBadly is the child's side: create a database, then end as told.
func endBadly(t *testing.T, ending string) {
	u := pgtest.NewURL(t)
	t.Logf("created %s", u)
	switch ending {
	case "fatal":
		t.Fatal("the test fails")
	case "panic":
		panic("the test panics")
	}
}

// A database is dropped when the test that made it ends, also when that test
// fails or panics, so a failing run leaves none behind.
func TestDatabaseIsDroppedEvenWhenTheTestFails(t *testing.T) {
	if ending := os.Getenv(helperEnv); ending != "" {
		endBadly(t, ending)
		return
	}
	admin, err := sql.Open("postgres", pgtest.AdminURL())
	require.NoError(t, err)
	defer admin.Close()
	for _, ending := range []string{"pass", "fatal", "panic"} {
		t.Run(ending, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestDatabaseIsDroppedEvenWhenTheTestFails$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), helperEnv+"="+ending)
			out, err := cmd.CombinedOutput()
			if ending == "pass" {
				require.NoError(t, err, "%s", out)
			} else {
				require.Error(t, err, "the child's test must fail: %s", out)
			}
			m := regexp.MustCompile(`created postgres://\S+/(` + regexp.QuoteMeta(pgtest.DatabasePrefix()) + `[0-9a-f]+)\?`).FindSubmatch(out)
			require.NotNil(t, m, "the child created no database: %s", out)
			var exists bool
			require.NoError(t, admin.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, string(m[1])).Scan(&exists))
			assert.False(t, exists, "database %s was left behind after a test that ended with %s", m[1], ending)
		})
	}
}

func TestDatabasePrefixCarriesTheRunID(t *testing.T) {
	t.Setenv("TEST_RUN_ID", "make-1234; DROP")
	assert.Equal(t, "cleantrack_test_make1234drop_", pgtest.DatabasePrefix())
	t.Setenv("TEST_RUN_ID", "")
	assert.Equal(t, "cleantrack_test_", pgtest.DatabasePrefix())
}
