package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Demo account facts, for the CLI and the README walk-through.
const (
	DemoAccountSlug   = "demo-hospital"
	DemoCustomerID    = "cus_demo_hospital"
	DemoTimezone      = "America/New_York"
	demoSeedLockID    = 0x5365656444656d6f // "SeedDemo"
	demoHistoryLength = 35 * 24 * time.Hour
)

type demoUser struct {
	email, first, last, role string
}

var demoUsers = []demoUser{
	{"olivia.owner@demo-hospital.example.com", "Olivia", "Owner", "owner"},
	{"adam.admin@demo-hospital.example.com", "Adam", "Admin", "admin"},
	{"mia.manager@demo-hospital.example.com", "Mia", "Manager", "manager"},
	{"tom.tech@demo-hospital.example.com", "Tom", "Tech", "technician"},
	{"tina.tech@demo-hospital.example.com", "Tina", "Tech", "technician"},
}

var demoLocations = []string{"Main Building", "ICU Wing"}

type demoProtocol struct {
	name      string
	steps     []string
	minutes   int
	chemicals []string
}

var demoProtocols = []demoProtocol{
	{"Standard Ultrasound Cleaning", []string{
		"Power off the equipment", "Disconnect the transducer", "Apply disinfectant spray",
		"Wipe every surface with a lint-free cloth", "Let it air-dry for 5 minutes",
	}, 15, []string{"EPA-approved disinfectant", "70% isopropyl alcohol wipes"}},
	{"Ventilator Disinfection", []string{
		"Disconnect from the patient circuit", "Replace the filters", "Wipe the housing with hydrogen peroxide",
		"Clean the touch screen with alcohol wipes", "Run the self-test",
	}, 30, []string{"Hydrogen peroxide wipes", "70% isopropyl alcohol wipes"}},
	{"Surface Wipe-Down", []string{
		"Put on gloves", "Remove visible soil", "Wipe with quaternary ammonium disinfectant",
		"Respect the 3-minute contact time",
	}, 10, []string{"Quaternary ammonium disinfectant"}},
}

// demoEquipment describes one piece of demo equipment and its history: it was
// cleaned every interval (some cleanings late), last lastAgo before the seed;
// lastAgo 0 means never cleaned.
type demoEquipment struct {
	name, serial string
	location     int // index into demoLocations
	protocol     int // index into demoProtocols
	intervalH    int
	assignee     int // index into demoUsers; -1 for none
	active       bool
	lastAgo      time.Duration
}

var demoEquipmentList = []demoEquipment{
	{"GE Ultrasound Unit 1", "US-001", 0, 0, 24, 3, true, 6 * time.Hour},
	{"GE Ultrasound Unit 2", "US-002", 0, 0, 24, 3, true, 30 * time.Hour},   // overdue 6 h
	{"Ventilator V-100", "VT-100", 1, 1, 8, 4, true, 3 * time.Hour},         //
	{"Ventilator V-200", "VT-200", 1, 1, 8, -1, true, 20 * time.Hour},       // overdue 12 h, nobody assigned
	{"Patient Monitor PM-1", "PM-001", 1, 2, 12, 4, true, 2 * time.Hour},    //
	{"Patient Monitor PM-2", "PM-002", 1, 2, 12, -1, true, 5 * time.Hour},   //
	{"Infusion Pump IP-1", "IP-001", 0, 2, 24, 3, true, 10 * time.Hour},     //
	{"Defibrillator DF-1", "DF-001", 0, 2, 168, -1, true, 0},                // never cleaned: overdue
	{"Hospital Bed B-12", "BED-012", 0, 2, 48, 4, true, 4 * 24 * time.Hour}, // overdue 2 days
	{"X-Ray Cart XR-1", "XR-001", 0, 0, 24, 3, false, 9 * 24 * time.Hour},   // deactivated
}

// lateness cycles through the gaps between demo cleanings, as fractions of
// the interval: most are early or on time, one in five is late.
var lateness = []float64{0.9, 1.0, 0.95, 1.2, 0.85}

// DemoSeed reports what SeedDemo found or created.
type DemoSeed struct {
	AccountID        int64
	AccountCreated   bool
	Users            int
	EquipmentCreated int
	CleaningsCreated int
}

// SeedDemo creates the demo account demo-hospital: an owner and members of
// every role, two locations, three protocols with steps and chemicals, ten
// pieces of equipment (four of them overdue at now, one deactivated) and five
// weeks of cleaning history ending at now. It is idempotent: what exists (by
// email, slug, name or serial number) is kept, and history is only written for
// equipment it creates. Two seeds at once serialise on an advisory lock.
func (s *Store) SeedDemo(ctx context.Context, now time.Time) (DemoSeed, error) {
	var out DemoSeed
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, demoSeedLockID); err != nil {
			return err
		}
		userIDs, err := seedUsers(ctx, tx)
		if err != nil {
			return err
		}
		out.Users = len(userIDs)
		created := now.Add(-demoHistoryLength)
		out.AccountID, out.AccountCreated, err = seedAccount(ctx, tx, userIDs[0], created, now)
		if err != nil {
			return err
		}
		for i, u := range demoUsers {
			if err := addAccountMember(ctx, tx, out.AccountID, userIDs[i], u.role); err != nil {
				return fmt.Errorf("seed member %s: %w", u.email, err)
			}
		}
		locIDs, protoIDs, err := seedPlaces(ctx, tx, out.AccountID)
		if err != nil {
			return err
		}
		for _, e := range demoEquipmentList {
			id, err := seedEquipment(ctx, tx, out.AccountID, e, locIDs, protoIDs, userIDs, created)
			if err != nil {
				return err
			}
			if id == 0 {
				continue
			}
			out.EquipmentCreated++
			n, err := seedHistory(ctx, tx, id, e, userIDs, created, now)
			if err != nil {
				return err
			}
			out.CleaningsCreated += n
		}
		return nil
	})
	if err != nil {
		return DemoSeed{}, fmt.Errorf("seed demo: %w", err)
	}
	return out, nil
}

func seedUsers(ctx context.Context, tx *sqlx.Tx) ([]int64, error) {
	ids := make([]int64, len(demoUsers))
	for i, u := range demoUsers {
		id, err := ensureUser(ctx, tx, NewUser{Email: u.email, FirstName: u.first, LastName: u.last})
		if err != nil {
			return nil, fmt.Errorf("seed user %s: %w", u.email, err)
		}
		ids[i] = id
	}
	return ids, nil
}

func seedAccount(ctx context.Context, tx *sqlx.Tx, ownerID int64, created, now time.Time) (int64, bool, error) {
	const qInsert = `
INSERT INTO accounts (name, slug, owner_id, plan, status, stripe_customer_id, subscription_end_date, timezone, created_at)
SELECT 'Demo Hospital', $1, $2, 'trial', 'trialing',
       CASE WHEN EXISTS (SELECT 1 FROM accounts WHERE stripe_customer_id = $3) THEN NULL ELSE $3 END,
       $4, $5, $6
ON CONFLICT (slug) DO NOTHING
RETURNING id`
	var id int64
	err := tx.GetContext(ctx, &id, qInsert, DemoAccountSlug, ownerID, DemoCustomerID, now.Add(14*24*time.Hour), DemoTimezone, created)
	if err == nil {
		return id, true, nil
	}
	if notFound(err) != ErrNotFound {
		return 0, false, fmt.Errorf("seed account: %w", err)
	}
	// It exists: keep it, but give it the demo customer id if it has none, so
	// offline Stripe triggers find it.
	const qExisting = `
UPDATE accounts SET stripe_customer_id = $2
WHERE slug = $1 AND stripe_customer_id IS NULL
  AND NOT EXISTS (SELECT 1 FROM accounts WHERE stripe_customer_id = $2)`
	if _, err := tx.ExecContext(ctx, qExisting, DemoAccountSlug, DemoCustomerID); err != nil {
		return 0, false, fmt.Errorf("seed account customer: %w", err)
	}
	if err := tx.GetContext(ctx, &id, `SELECT id FROM accounts WHERE slug = $1`, DemoAccountSlug); err != nil {
		return 0, false, fmt.Errorf("seed account: %w", err)
	}
	return id, false, nil
}

func seedPlaces(ctx context.Context, tx *sqlx.Tx, accountID int64) (locIDs, protoIDs []int64, err error) {
	const qLoc = `
WITH found AS (SELECT id FROM locations WHERE account_id = $1 AND name = $2 ORDER BY id LIMIT 1),
     made AS (INSERT INTO locations (account_id, name)
              SELECT $1, $2 WHERE NOT EXISTS (SELECT 1 FROM found) RETURNING id)
SELECT id FROM found UNION ALL SELECT id FROM made`
	for _, name := range demoLocations {
		var id int64
		if err := tx.GetContext(ctx, &id, qLoc, accountID, name); err != nil {
			return nil, nil, fmt.Errorf("seed location %s: %w", name, err)
		}
		locIDs = append(locIDs, id)
	}
	const qProto = `
WITH found AS (SELECT id FROM cleaning_protocols WHERE account_id = $1 AND name = $2 ORDER BY id LIMIT 1),
     made AS (INSERT INTO cleaning_protocols (account_id, name, steps, estimated_duration_minutes, required_chemicals)
              SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS (SELECT 1 FROM found) RETURNING id)
SELECT id FROM found UNION ALL SELECT id FROM made`
	for _, p := range demoProtocols {
		var id int64
		if err := tx.GetContext(ctx, &id, qProto, accountID, p.name, pq.Array(p.steps), p.minutes, pq.Array(p.chemicals)); err != nil {
			return nil, nil, fmt.Errorf("seed protocol %s: %w", p.name, err)
		}
		protoIDs = append(protoIDs, id)
	}
	return locIDs, protoIDs, nil
}

// seedEquipment inserts e unless the account has its serial number already;
// it returns the new id, or 0 when it existed.
func seedEquipment(ctx context.Context, tx *sqlx.Tx, accountID int64, e demoEquipment, locIDs, protoIDs, userIDs []int64, created time.Time) (int64, error) {
	const q = `
INSERT INTO equipment (account_id, location_id, name, serial_number, protocol_id,
                       cleaning_interval_hours, assigned_user_id, active, created_at)
SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9
WHERE NOT EXISTS (SELECT 1 FROM equipment WHERE account_id = $1 AND serial_number = $4)
RETURNING id`
	var assignee *int64
	if e.assignee >= 0 {
		assignee = &userIDs[e.assignee]
	}
	var id int64
	err := tx.GetContext(ctx, &id, q, accountID, locIDs[e.location], e.name, e.serial, protoIDs[e.protocol],
		e.intervalH, assignee, e.active, created)
	if notFound(err) == ErrNotFound {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("seed equipment %s: %w", e.serial, err)
	}
	return id, nil
}

// seedHistory writes e's cleanings, walking back from its last one by gaps of
// the interval times the lateness cycle, down to its creation.
func seedHistory(ctx context.Context, tx *sqlx.Tx, id int64, e demoEquipment, userIDs []int64, created, now time.Time) (int, error) {
	if e.lastAgo == 0 {
		return 0, nil
	}
	interval := time.Duration(e.intervalH) * time.Hour
	var at []string
	var by []int64
	cleaner := userIDs[3]
	if e.assignee >= 0 {
		cleaner = userIDs[e.assignee]
	}
	t := now.Add(-e.lastAgo).Truncate(time.Minute)
	for i := 0; t.After(created.Add(interval / 2)); i++ {
		at = append(at, t.UTC().Format(time.RFC3339Nano))
		by = append(by, cleaner)
		t = t.Add(-time.Duration(float64(interval) * lateness[i%len(lateness)]))
	}
	const q = `
INSERT INTO cleaning_logs (equipment_id, cleaned_by, cleaned_at)
SELECT $1, by, at FROM unnest($2::bigint[], $3::timestamptz[]) AS h(by, at)`
	if _, err := tx.ExecContext(ctx, q, id, pq.Array(by), pq.Array(at)); err != nil {
		return 0, fmt.Errorf("seed history of %s: %w", e.serial, err)
	}
	return len(at), nil
}
