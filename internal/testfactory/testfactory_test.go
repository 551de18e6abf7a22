package testfactory_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cleantrack/jobs/internal/pgtest"
	"github.com/cleantrack/jobs/internal/postgres"
	"github.com/cleantrack/jobs/internal/testfactory"
)

func TestFactoryRows(t *testing.T) {
	t.Parallel()
	store, _ := pgtest.NewStore(t)
	ctx := context.Background()

	// Defaults are unique: two accounts without options coexist.
	a := testfactory.Account(t, store, nil)
	b := testfactory.Account(t, store, &testfactory.AccountOpts{Slug: "harbor", Status: "active", StripeCustomerID: "cus_h"})
	assert.NotEqual(t, a.Slug, b.Slug)
	assert.Equal(t, "harbor-owner@example.com", b.OwnerEmail)
	acc, err := store.AccountBySlug(ctx, "harbor")
	require.NoError(t, err)
	assert.Equal(t, "Account harbor", acc.Name)
	assert.Equal(t, "active", acc.Status)
	assert.Equal(t, b.OwnerID, acc.OwnerID)

	testfactory.Member(t, store, b.ID, postgres.RoleAdmin, &testfactory.UserOpts{Email: "adam@example.com"})
	testfactory.Member(t, store, b.ID, postgres.RoleManager, &testfactory.UserOpts{Email: "mia@example.com", FirstName: "Mia"})
	contacts, err := store.BillingContacts(ctx, b.ID)
	require.NoError(t, err)
	var roles []string
	for _, c := range contacts {
		roles = append(roles, c.Email+" "+c.Role)
	}
	assert.Equal(t, []string{"harbor-owner@example.com owner", "adam@example.com admin"}, roles, "the manager gets no billing mail")

	ward := testfactory.Location(t, store, b.ID, "Ward")
	created := time.Now().Add(-72 * time.Hour)
	eq := testfactory.Equipment(t, store, b.ID, ward, &testfactory.EquipmentOpts{CreatedAt: created, Cleanings: []time.Time{created.Add(time.Hour)}})
	var cleanings int
	require.NoError(t, store.DB.Get(&cleanings, `SELECT count(*) FROM cleaning_logs WHERE equipment_id = $1`, eq))
	assert.Equal(t, 1, cleanings)
}
