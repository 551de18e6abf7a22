// Package testfactory inserts the rows tests need (users, accounts with
// their owner, members, locations, protocols, equipment and cleanings)
// through the store, with defaults for everything a test does not care
// about. River's testfactory is the model: one function per row kind, taking
// the test, the store and optional options, failing the test on error.
//
// Defaults are unique within a database (user-7@example.com, account-7, ...),
// so a test may call a function many times without naming anything.
package testfactory

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cleantrack/jobs/internal/postgres"
)

var seq atomic.Int64

func next() int64 { return seq.Add(1) }

// UserOpts describes a user; zero fields get defaults.
type UserOpts struct {
	Email     string // default user-<n>@example.com
	FirstName string // default Test
	LastName  string // default User <n>
}

// User inserts a user and returns its id.
func User(tb testing.TB, store *postgres.Store, opts *UserOpts) int64 {
	tb.Helper()
	u := newUser(opts, "user")
	id, err := store.CreateUser(tb.Context(), u)
	if err != nil {
		tb.Fatalf("testfactory: %v", err)
	}
	return id
}

func newUser(opts *UserOpts, stem string) postgres.NewUser {
	var o UserOpts
	if opts != nil {
		o = *opts
	}
	n := next()
	if o.Email == "" {
		o.Email = fmt.Sprintf("%s-%d@example.com", stem, n)
	}
	if o.FirstName == "" {
		o.FirstName = "Test"
	}
	if o.LastName == "" {
		o.LastName = fmt.Sprintf("User %d", n)
	}
	return postgres.NewUser{Email: o.Email, FirstName: o.FirstName, LastName: o.LastName}
}

// AccountOpts describes an account; zero fields get defaults.
type AccountOpts struct {
	Slug string // default account-<n>
	Name string // default "Account <slug>"
	// Owner describes the owner to create (default <slug>-owner@example.com);
	// OwnerID names an existing user instead.
	Owner                *UserOpts
	OwnerID              int64
	Plan                 string // default trial
	Status               string // default trialing
	Timezone             string // default UTC
	StripeCustomerID     string // default none
	StripeSubscriptionID string
	SubscriptionEndDate  time.Time
	CreatedAt            time.Time
}

// AccountRow is an account Account inserted.
type AccountRow struct {
	ID         int64
	Slug       string
	OwnerID    int64
	OwnerEmail string // empty when OwnerID was given
}

// Account inserts an account, its owner (unless OwnerID is given) and the
// owner's membership.
func Account(tb testing.TB, store *postgres.Store, opts *AccountOpts) AccountRow {
	tb.Helper()
	var o AccountOpts
	if opts != nil {
		o = *opts
	}
	if o.Slug == "" {
		o.Slug = fmt.Sprintf("account-%d", next())
	}
	if o.Name == "" {
		o.Name = "Account " + o.Slug
	}
	row := AccountRow{Slug: o.Slug, OwnerID: o.OwnerID}
	if row.OwnerID == 0 {
		owner := UserOpts{Email: o.Slug + "-owner@example.com", FirstName: "Olivia", LastName: "Owner"}
		if o.Owner != nil {
			owner = *o.Owner
		}
		u := newUser(&owner, o.Slug+"-owner")
		row.OwnerEmail = u.Email
		id, err := store.CreateUser(tb.Context(), u)
		if err != nil {
			tb.Fatalf("testfactory: %v", err)
		}
		row.OwnerID = id
	}
	id, err := store.CreateAccount(tb.Context(), postgres.NewAccount{
		Name: o.Name, Slug: o.Slug, OwnerID: row.OwnerID, Plan: o.Plan, Status: o.Status, Timezone: o.Timezone,
		StripeCustomerID: o.StripeCustomerID, StripeSubscriptionID: o.StripeSubscriptionID,
		SubscriptionEndDate: o.SubscriptionEndDate, CreatedAt: o.CreatedAt,
	})
	if err != nil {
		tb.Fatalf("testfactory: %v", err)
	}
	row.ID = id
	return row
}

// Member inserts a user (opts, defaults as for User) and makes them a member
// of the account with role (postgres.RoleAdmin, ...); it returns the user id.
func Member(tb testing.TB, store *postgres.Store, accountID int64, role string, opts *UserOpts) int64 {
	tb.Helper()
	id := User(tb, store, opts)
	AddMember(tb, store, accountID, id, role)
	return id
}

// AddMember makes an existing user a member of the account with role.
func AddMember(tb testing.TB, store *postgres.Store, accountID, userID int64, role string) {
	tb.Helper()
	if err := store.AddAccountMember(tb.Context(), accountID, userID, role); err != nil {
		tb.Fatalf("testfactory: %v", err)
	}
}

// Location inserts a location of the account (name default Location <n>)
// and returns its id.
func Location(tb testing.TB, store *postgres.Store, accountID int64, name string) int64 {
	tb.Helper()
	if name == "" {
		name = fmt.Sprintf("Location %d", next())
	}
	id, err := store.CreateLocation(tb.Context(), accountID, name)
	if err != nil {
		tb.Fatalf("testfactory: %v", err)
	}
	return id
}

// Protocol inserts a cleaning protocol of the account: a standard wipe-down
// of 15 minutes, with steps and a chemical, and returns its id.
func Protocol(tb testing.TB, store *postgres.Store, accountID int64) int64 {
	tb.Helper()
	id, err := store.CreateProtocol(tb.Context(), postgres.NewProtocol{
		AccountID: accountID, Name: "Standard wipe-down", Steps: []string{"Power off", "Wipe every surface"},
		EstimatedMinutes: 15, RequiredChemicals: []string{"EPA-approved disinfectant"},
	})
	if err != nil {
		tb.Fatalf("testfactory: %v", err)
	}
	return id
}

// EquipmentOpts describes a piece of equipment; zero fields get defaults.
type EquipmentOpts struct {
	Name          string // default Equipment <n>
	SerialNumber  string // default SN-<n>
	IntervalHours int    // cleaning interval; default 24
	ProtocolID    int64
	AssigneeID    int64
	Inactive      bool
	CreatedAt     time.Time   // default now
	Cleanings     []time.Time // cleanings to log, by nobody in particular
}

// Equipment inserts a piece of equipment at the location, logs its
// Cleanings, and returns its id.
func Equipment(tb testing.TB, store *postgres.Store, accountID, locationID int64, opts *EquipmentOpts) int64 {
	tb.Helper()
	var o EquipmentOpts
	if opts != nil {
		o = *opts
	}
	n := next()
	if o.Name == "" {
		o.Name = fmt.Sprintf("Equipment %d", n)
	}
	if o.SerialNumber == "" {
		o.SerialNumber = fmt.Sprintf("SN-%03d", n)
	}
	if o.IntervalHours == 0 {
		o.IntervalHours = 24
	}
	id, err := store.CreateEquipment(tb.Context(), postgres.NewEquipment{
		AccountID: accountID, LocationID: locationID, Name: o.Name, SerialNumber: o.SerialNumber, ProtocolID: o.ProtocolID,
		CleaningIntervalHours: o.IntervalHours, AssignedUserID: o.AssigneeID, Inactive: o.Inactive, CreatedAt: o.CreatedAt,
	})
	if err != nil {
		tb.Fatalf("testfactory: %v", err)
	}
	for _, at := range o.Cleanings {
		Cleaning(tb, store, id, 0, at)
	}
	return id
}

// Cleaning logs a cleaning of the equipment at the time, by the user (0:
// nobody recorded).
func Cleaning(tb testing.TB, store *postgres.Store, equipmentID, by int64, at time.Time) {
	tb.Helper()
	if _, err := store.RecordCleaning(tb.Context(), equipmentID, by, at); err != nil {
		tb.Fatalf("testfactory: %v", err)
	}
}

// LegacyAddress overwrites the stored address of user id with addr, bypassing
// the validation of every insert path: it stands for a row written before
// addresses were checked (one with a CR/LF, say), which the email paths must
// still survive.
func LegacyAddress(tb testing.TB, store *postgres.Store, userID int64, addr string) {
	tb.Helper()
	if _, err := store.DB.ExecContext(tb.Context(), `UPDATE users SET email = $2 WHERE id = $1`, userID, addr); err != nil {
		tb.Fatalf("testfactory: legacy address: %v", err)
	}
}
