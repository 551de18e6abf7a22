package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/address"
	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/postgres"
)

type member struct {
	AccountID int64  `db:"account_id"`
	UserID    int64  `db:"user_id"`
	Role      string `db:"role"`
}

func members(t *testing.T, store *postgres.Store) []member {
	t.Helper()
	var out []member
	require.NoError(t, store.DB.Select(&out, `SELECT account_id, user_id, role FROM account_members ORDER BY account_id, user_id`))
	return out
}

func TestCreateAccountMakesItsOwnerAMember(t *testing.T) {
	t.Parallel()
	store, _ := pgtest.NewStore(t)
	ctx := context.Background()
	owner, err := store.CreateUser(ctx, postgres.NewUser{Email: "Olivia@Example.com", FirstName: "Olivia"})
	require.NoError(t, err)
	_, err = store.CreateUser(ctx, postgres.NewUser{Email: "olivia@example.com"})
	assert.Error(t, err, "addresses are unique regardless of case")

	end := time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)
	id, err := store.CreateAccount(ctx, postgres.NewAccount{Name: "Harbor", Slug: "harbor", OwnerID: owner,
		StripeCustomerID: "cus_1", SubscriptionEndDate: end})
	require.NoError(t, err)
	a, err := store.AccountByID(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, "trial", a.Plan, "the schema's defaults")
	assert.Equal(t, "trialing", a.Status)
	assert.Equal(t, "cus_1", a.StripeCustomerID)
	assert.Empty(t, a.StripeSubscriptionID)
	assert.Equal(t, []member{{id, owner, postgres.RoleOwner}}, members(t, store))

	admin, err := store.CreateUser(ctx, postgres.NewUser{Email: "adam@example.com"})
	require.NoError(t, err)
	require.NoError(t, store.AddAccountMember(ctx, id, admin, postgres.RoleAdmin))
	require.NoError(t, store.AddAccountMember(ctx, id, admin, postgres.RoleManager), "adding a member again changes nothing")
	assert.Equal(t, []member{{id, owner, postgres.RoleOwner}, {id, admin, postgres.RoleAdmin}}, members(t, store))
	assert.Error(t, store.AddAccountMember(ctx, id, admin+1, "janitor"), "an unknown role or user is refused")

	_, err = store.CreateAccount(ctx, postgres.NewAccount{Name: "Again", Slug: "harbor", OwnerID: owner})
	assert.ErrorContains(t, err, "create account harbor")
	assert.Len(t, members(t, store), 2, "a refused account leaves no member row behind")
}

func TestCreateAccountsInOneStatement(t *testing.T) {
	t.Parallel()
	store, _ := pgtest.NewStore(t)
	ctx := context.Background()
	in := []postgres.OwnedAccount{
		{Owner: postgres.NewUser{Email: "b@example.com"}, Account: postgres.NewAccount{Name: "B", Slug: "b", StripeCustomerID: "cus_b", Status: "active"}},
		{Owner: postgres.NewUser{Email: "a@example.com"}, Account: postgres.NewAccount{Name: "A", Slug: "a", Timezone: "Europe/Berlin"}},
	}
	ids, err := store.CreateAccounts(ctx, in)
	require.NoError(t, err)
	require.Len(t, ids, 2)
	for i, id := range ids {
		a, err := store.AccountByID(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, in[i].Account.Slug, a.Slug, "ids come back in the order given")
	}
	b, err := store.AccountBySlug(ctx, "b")
	require.NoError(t, err)
	assert.Equal(t, "active", b.Status)
	assert.Equal(t, "cus_b", b.StripeCustomerID)
	a, err := store.AccountBySlug(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, "trialing", a.Status)
	assert.Equal(t, "Europe/Berlin", a.Timezone)
	assert.Empty(t, a.StripeCustomerID)
	ms := members(t, store)
	require.Len(t, ms, 2)
	for _, m := range ms {
		assert.Equal(t, postgres.RoleOwner, m.Role)
	}
}

func TestUserInsertsRefuseInvalidAddresses(t *testing.T) {
	t.Parallel()
	store, _ := pgtest.NewStore(t)
	ctx := context.Background()
	for _, bad := range []string{"owner@example.com\r\nBcc: x@example.com", "Owner <owner@example.com>", "not-an-address"} {
		_, err := store.CreateUser(ctx, postgres.NewUser{Email: bad})
		assert.ErrorIs(t, err, address.ErrInvalid, "CreateUser(%q)", bad)
		_, err = store.CreateAccounts(ctx, []postgres.OwnedAccount{{Owner: postgres.NewUser{Email: bad},
			Account: postgres.NewAccount{Name: "Bad", Slug: "bad"}}})
		assert.ErrorIs(t, err, address.ErrInvalid, "CreateAccounts with owner %q", bad)
	}
	var users int
	require.NoError(t, store.DB.Get(&users, `SELECT count(*) FROM users`))
	assert.Zero(t, users, "no refused address was stored")
}
