-- Wellness-plan subscriptions mirrored from Stripe, and consult fees held by manual capture.
CREATE TABLE subscriptions (
    id                   text PRIMARY KEY,          -- Stripe's sub_...
    customer_id          text NOT NULL,             -- Stripe's cus_...
    -- Known when the Stripe customer's metadata names one of our users.
    user_id              uuid REFERENCES users (id) ON DELETE SET NULL,
    status               text NOT NULL,
    plan_id              text,                      -- the price (or legacy plan) id
    current_period_end   timestamptz,
    cancel_at_period_end boolean NOT NULL DEFAULT false,
    last_invoice_id      text,
    last_invoice_status  text,
    last_invoice_created timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_user_idx ON subscriptions (user_id);
CREATE INDEX subscriptions_customer_idx ON subscriptions (customer_id);

-- A video booking's fee: authorised (held) at booking, captured on completion, released on
-- cancellation.
CREATE TABLE consult_fees (
    booking_id        uuid PRIMARY KEY REFERENCES bookings (id),
    payment_intent_id text NOT NULL UNIQUE,
    client_secret     text NOT NULL,
    amount_minor      integer NOT NULL CHECK (amount_minor > 0),
    currency          text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    status            text NOT NULL CHECK (status IN ('held', 'captured', 'released')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
