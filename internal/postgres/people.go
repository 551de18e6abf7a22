package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/cleantrack/jobs/internal/address"
)

// NewUser is a user to create.
type NewUser struct {
	Email     string
	FirstName string
	LastName  string
}

// NewAccount is an account to create. Empty fields take the schema's
// defaults: plan trial, status trialing, timezone UTC, created now, no Stripe
// customer, subscription or end date.
type NewAccount struct {
	Name                 string
	Slug                 string
	OwnerID              int64 // the user who owns it (CreateAccount)
	Plan                 string
	Status               string
	Timezone             string
	StripeCustomerID     string
	StripeSubscriptionID string
	SubscriptionEndDate  time.Time
	CreatedAt            time.Time
}

// OwnedAccount is an account and the owner to create with it (CreateAccounts).
type OwnedAccount struct {
	Owner   NewUser
	Account NewAccount // its OwnerID is ignored: the owner is Owner
}

// Roles a member of an account can have.
const (
	RoleOwner      = "owner"
	RoleAdmin      = "admin"
	RoleManager    = "manager"
	RoleTechnician = "technician"
)

// CreateUser inserts a user and returns its id. Addresses are unique,
// regardless of case: an address already taken is an error. An address that
// address.Check refuses is an error wrapping address.ErrInvalid.
func (s *Store) CreateUser(ctx context.Context, u NewUser) (int64, error) {
	const q = `INSERT INTO users (email, first_name, last_name) VALUES ($1, $2, $3) RETURNING id`
	if err := address.Check(u.Email); err != nil {
		return 0, fmt.Errorf("create user: %w", err)
	}
	var id int64
	if err := s.DB.GetContext(ctx, &id, q, u.Email, u.FirstName, u.LastName); err != nil {
		return 0, fmt.Errorf("create user %s: %w", u.Email, err)
	}
	return id, nil
}

// CreateAccount inserts an account and its owner's membership (role owner)
// in one transaction, and returns the account id. The slug and the Stripe
// customer id are unique.
func (s *Store) CreateAccount(ctx context.Context, a NewAccount) (int64, error) {
	const q = `
INSERT INTO accounts (name, slug, owner_id, plan, status, timezone, stripe_customer_id,
                      stripe_subscription_id, subscription_end_date, created_at)
VALUES ($1, $2, $3, COALESCE(NULLIF($4, ''), 'trial'), COALESCE(NULLIF($5, ''), 'trialing'),
        COALESCE(NULLIF($6, ''), 'UTC'), NULLIF($7, ''), NULLIF($8, ''), $9, COALESCE($10, now()))
RETURNING id`
	var id int64
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if err := tx.GetContext(ctx, &id, q, a.Name, a.Slug, a.OwnerID, a.Plan, a.Status, a.Timezone,
			a.StripeCustomerID, a.StripeSubscriptionID, nullTime(a.SubscriptionEndDate), nullTime(a.CreatedAt)); err != nil {
			return err
		}
		return addAccountMember(ctx, tx, id, a.OwnerID, RoleOwner)
	})
	if err != nil {
		return 0, fmt.Errorf("create account %s: %w", a.Slug, err)
	}
	return id, nil
}

// CreateAccounts inserts accounts with their owners (each owner a new user
// and the account's member with role owner) in one statement, for seeding
// thousands at once, and returns the account ids in the order given. An
// owner address that address.Check refuses fails the whole call, before any
// row is written.
func (s *Store) CreateAccounts(ctx context.Context, accounts []OwnedAccount) ([]int64, error) {
	const q = `
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])
        WITH ORDINALITY AS i(email, first_name, last_name, name, slug, plan, status, timezone,
                             customer_id, subscription_id, end_date, created_at, n)
), u AS (
    INSERT INTO users (email, first_name, last_name)
    SELECT email, first_name, last_name FROM input ORDER BY n
    RETURNING id, email
), a AS (
    INSERT INTO accounts (name, slug, owner_id, plan, status, timezone, stripe_customer_id,
                          stripe_subscription_id, subscription_end_date, created_at)
    SELECT i.name, i.slug, u.id, COALESCE(NULLIF(i.plan, ''), 'trial'), COALESCE(NULLIF(i.status, ''), 'trialing'),
           COALESCE(NULLIF(i.timezone, ''), 'UTC'), NULLIF(i.customer_id, ''), NULLIF(i.subscription_id, ''),
           NULLIF(i.end_date, '')::timestamptz, COALESCE(NULLIF(i.created_at, '')::timestamptz, now())
    FROM input i JOIN u ON u.email = i.email::citext
    ORDER BY i.n
    RETURNING id, owner_id, slug
), m AS (
    INSERT INTO account_members (account_id, user_id, role) SELECT id, owner_id, 'owner' FROM a
)
SELECT a.id FROM a JOIN input i ON i.slug = a.slug ORDER BY i.n`
	cols := make([][]string, 12)
	for i, oa := range accounts {
		if err := address.Check(oa.Owner.Email); err != nil {
			return nil, fmt.Errorf("create accounts: owner of account %d (%s): %w", i, oa.Account.Slug, err)
		}
	}
	for _, oa := range accounts {
		a := oa.Account
		for i, v := range []string{oa.Owner.Email, oa.Owner.FirstName, oa.Owner.LastName, a.Name, a.Slug, a.Plan, a.Status,
			a.Timezone, a.StripeCustomerID, a.StripeSubscriptionID, timeText(a.SubscriptionEndDate), timeText(a.CreatedAt)} {
			cols[i] = append(cols[i], v)
		}
	}
	args := make([]any, len(cols))
	for i, c := range cols {
		args[i] = pq.Array(c)
	}
	var ids []int64
	if err := s.DB.SelectContext(ctx, &ids, q, args...); err != nil {
		return nil, fmt.Errorf("create %d accounts: %w", len(accounts), err)
	}
	return ids, nil
}

// AddAccountMember makes the user a member of the account with role (owner,
// admin, manager or technician). A user who is a member already keeps the
// role they have.
func (s *Store) AddAccountMember(ctx context.Context, accountID, userID int64, role string) error {
	if err := addAccountMember(ctx, s.DB, accountID, userID, role); err != nil {
		return fmt.Errorf("add user %d to account %d as %s: %w", userID, accountID, role, err)
	}
	return nil
}

func addAccountMember(ctx context.Context, db sqlx.ExecerContext, accountID, userID int64, role string) error {
	const q = `
INSERT INTO account_members (account_id, user_id, role) VALUES ($1, $2, $3)
ON CONFLICT (account_id, user_id) DO NOTHING`
	_, err := db.ExecContext(ctx, q, accountID, userID, role)
	return err
}

// ensureUser returns the id of the user with u's address, creating the user
// when there is none (the demo seed, which may run again).
func ensureUser(ctx context.Context, db sqlx.QueryerContext, u NewUser) (int64, error) {
	const q = `
INSERT INTO users (email, first_name, last_name) VALUES ($1, $2, $3)
ON CONFLICT (email) DO UPDATE SET email = users.email
RETURNING id`
	if err := address.Check(u.Email); err != nil {
		return 0, err
	}
	var id int64
	err := sqlx.GetContext(ctx, db, &id, q, u.Email, u.FirstName, u.LastName)
	return id, err
}

// nullTime is t, or NULL when it is zero.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// timeText is t for a text[] cast to timestamptz, or "" (NULL) when zero.
func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}
