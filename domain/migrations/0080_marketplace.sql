-- Marketplace: catalog, stock, cart reservations, orders; Stripe events; the outbox.
CREATE TABLE products (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind              text NOT NULL CHECK (kind IN ('food', 'medication', 'accessory')),
    description       text NOT NULL DEFAULT '',
    -- Set: only for a pet with an active prescription for this drug.
    prescription_drug text CHECK (prescription_drug IS NULL OR length(prescription_drug) BETWEEN 1 AND 200),
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE product_variants (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    product_id  uuid NOT NULL REFERENCES products (id),
    sku         text NOT NULL UNIQUE CHECK (length(sku) BETWEEN 1 AND 100),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    price_minor integer NOT NULL CHECK (price_minor > 0),
    currency    text NOT NULL CHECK (currency ~ '^[a-z]{3}$')
);
CREATE INDEX product_variants_product_idx ON product_variants (product_id);

CREATE TABLE stock (
    variant_id uuid PRIMARY KEY REFERENCES product_variants (id),
    quantity   integer NOT NULL CHECK (quantity >= 0)
);

-- A reservation holds `quantity` units taken out of stock until it expires.
CREATE TABLE reservations (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES users (id),
    variant_id uuid NOT NULL REFERENCES product_variants (id),
    quantity   integer NOT NULL CHECK (quantity > 0),
    expires_at timestamptz NOT NULL
);
CREATE INDEX reservations_expiry_idx ON reservations (expires_at);
CREATE INDEX reservations_user_idx ON reservations (user_id, variant_id);

CREATE TABLE orders (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    buyer_id          uuid NOT NULL REFERENCES users (id),
    pet_id            uuid REFERENCES pets (id),
    status            text NOT NULL CHECK (status IN ('pending_payment', 'paid', 'fulfilled',
                          'delivered', 'cancelled', 'refunded', 'partially_refunded')),
    total_minor       integer NOT NULL CHECK (total_minor > 0),
    currency          text NOT NULL CHECK (currency ~ '^[a-z]{3}$'),
    payment_intent_id text UNIQUE,
    client_secret     text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_buyer_idx ON orders (buyer_id, created_at);

CREATE TABLE order_lines (
    order_id         uuid NOT NULL REFERENCES orders (id),
    variant_id       uuid NOT NULL REFERENCES product_variants (id),
    quantity         integer NOT NULL CHECK (quantity > 0),
    unit_price_minor integer NOT NULL CHECK (unit_price_minor > 0),
    PRIMARY KEY (order_id, variant_id)
);

-- Each Stripe event is applied once: its row is written in the transaction of its effect.
CREATE TABLE stripe_events (
    id          text PRIMARY KEY,
    type        text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Domain events, written in the transaction of the change they announce; a relay publishes them.
CREATE TABLE outbox (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic      text NOT NULL,
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX outbox_unsent_idx ON outbox (id) WHERE sent_at IS NULL;
