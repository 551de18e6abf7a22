package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// NewProtocol is a cleaning protocol to create.
type NewProtocol struct {
	AccountID         int64
	Name              string
	Steps             []string
	EstimatedMinutes  int
	RequiredChemicals []string
}

// NewEquipment is a piece of equipment to create.
type NewEquipment struct {
	AccountID             int64
	LocationID            int64
	Name                  string
	SerialNumber          string
	ProtocolID            int64 // 0: none
	CleaningIntervalHours int
	AssignedUserID        int64 // 0: nobody
	Inactive              bool
	CreatedAt             time.Time // zero: now
}

// CreateLocation inserts a location of the account and returns its id.
func (s *Store) CreateLocation(ctx context.Context, accountID int64, name string) (int64, error) {
	const q = `INSERT INTO locations (account_id, name) VALUES ($1, $2) RETURNING id`
	var id int64
	if err := s.DB.GetContext(ctx, &id, q, accountID, name); err != nil {
		return 0, fmt.Errorf("create location %q of account %d: %w", name, accountID, err)
	}
	return id, nil
}

// CreateProtocol inserts a cleaning protocol and returns its id.
func (s *Store) CreateProtocol(ctx context.Context, p NewProtocol) (int64, error) {
	const q = `
INSERT INTO cleaning_protocols (account_id, name, steps, estimated_duration_minutes, required_chemicals)
VALUES ($1, $2, $3, $4, $5) RETURNING id`
	steps, chemicals := p.Steps, p.RequiredChemicals
	if steps == nil {
		steps = []string{}
	}
	if chemicals == nil {
		chemicals = []string{}
	}
	var id int64
	if err := s.DB.GetContext(ctx, &id, q, p.AccountID, p.Name, pq.Array(steps), p.EstimatedMinutes, pq.Array(chemicals)); err != nil {
		return 0, fmt.Errorf("create protocol %q of account %d: %w", p.Name, p.AccountID, err)
	}
	return id, nil
}

// CreateEquipment inserts a piece of equipment and returns its id. The
// cleaning interval must be positive.
func (s *Store) CreateEquipment(ctx context.Context, e NewEquipment) (int64, error) {
	const q = `
INSERT INTO equipment (account_id, location_id, name, serial_number, protocol_id,
                       cleaning_interval_hours, assigned_user_id, active, created_at)
VALUES ($1, $2, $3, $4, NULLIF($5::bigint, 0), $6, NULLIF($7::bigint, 0), $8, COALESCE($9, now()))
RETURNING id`
	var id int64
	if err := s.DB.GetContext(ctx, &id, q, e.AccountID, e.LocationID, e.Name, e.SerialNumber, e.ProtocolID,
		e.CleaningIntervalHours, e.AssignedUserID, !e.Inactive, nullTime(e.CreatedAt)); err != nil {
		return 0, fmt.Errorf("create equipment %q of account %d: %w", e.Name, e.AccountID, err)
	}
	return id, nil
}

// RecordCleaning logs that the equipment was cleaned at the time, by the
// user (0: unknown), and returns the log's id.
func (s *Store) RecordCleaning(ctx context.Context, equipmentID, cleanedBy int64, at time.Time) (int64, error) {
	const q = `INSERT INTO cleaning_logs (equipment_id, cleaned_by, cleaned_at) VALUES ($1, NULLIF($2::bigint, 0), $3) RETURNING id`
	var id int64
	if err := s.DB.GetContext(ctx, &id, q, equipmentID, cleanedBy, at); err != nil {
		return 0, fmt.Errorf("record cleaning of equipment %d: %w", equipmentID, err)
	}
	return id, nil
}
