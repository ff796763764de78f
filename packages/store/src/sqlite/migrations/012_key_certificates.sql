-- A replica's rotated-in key carries a certificate signed by the key it replaces (JSON: by, issued_at, signature),
-- and every key registered from now on its activation, signed by itself (JSON: at, signature).
ALTER TABLE coordinator_keys ADD COLUMN certificate TEXT;
ALTER TABLE coordinator_keys ADD COLUMN activation TEXT;
