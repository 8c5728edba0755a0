-- Stripe customers of our users, Connect accounts of vets, vet-sold products, wellness plans
-- subscribed from our side, and the index the unpaid-order expiry scans.

-- One Stripe customer per user, created lazily (idempotency key from the user id).
CREATE TABLE stripe_customers (
    user_id     uuid PRIMARY KEY REFERENCES users (id),
    customer_id text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A vet's Stripe Connect account: their consult fees and products are destination charges.
CREATE TABLE vet_payout_accounts (
    vet_id            uuid PRIMARY KEY REFERENCES users (id),
    stripe_account_id text NOT NULL UNIQUE CHECK (stripe_account_id ~ '^acct_[A-Za-z0-9]{1,64}$'),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- A product a vet sells (NULL: the platform's own); an order of it pays that vet.
ALTER TABLE products ADD COLUMN vet_id uuid REFERENCES users (id);
ALTER TABLE orders ADD COLUMN vet_id uuid REFERENCES users (id);
ALTER TABLE orders ADD COLUMN application_fee_minor integer
    CHECK (application_fee_minor IS NULL OR application_fee_minor >= 0);
CREATE INDEX orders_pending_payment_idx ON orders (created_at) WHERE status = 'pending_payment';

-- The destination and platform share of a consult fee, as sent to Stripe.
ALTER TABLE consult_fees ADD COLUMN destination text;
ALTER TABLE consult_fees ADD COLUMN application_fee_minor integer
    CHECK (application_fee_minor IS NULL OR application_fee_minor >= 0);

-- The pet a wellness plan covers (from the subscription's metadata, set when we create it).
ALTER TABLE subscriptions ADD COLUMN pet_id uuid REFERENCES pets (id) ON DELETE SET NULL;
CREATE INDEX subscriptions_pet_idx ON subscriptions (pet_id);

-- Paid video bookings wait in 'requested' until their fee is held; an index for the sweep.
CREATE INDEX bookings_requested_idx ON bookings (created_at) WHERE status = 'requested';
