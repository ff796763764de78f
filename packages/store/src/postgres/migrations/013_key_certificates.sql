-- A replica's rotated-in key carries a certificate signed by the key it replaces (by, issued_at, signature).
ALTER TABLE coordinator_keys ADD COLUMN certificate JSONB;
