-- Reports as received: only for deduplication and the count of what is
-- stored; no client address is ever stored.
CREATE TABLE reports (
    id       TEXT PRIMARY KEY,
    program  TEXT NOT NULL,
    channel  TEXT NOT NULL,
    week     TEXT NOT NULL,
    os       TEXT NOT NULL,
    arch     TEXT NOT NULL,
    running  TEXT NOT NULL,
    received BIGINT NOT NULL
);

-- Aggregates per program, channel, week and version, kept as reports
-- arrive: reports is how many reports speak of the version (running it
-- or counting about it), running how many ran it.
CREATE TABLE cells (
    program TEXT NOT NULL,
    channel TEXT NOT NULL,
    week    TEXT NOT NULL,
    version TEXT NOT NULL,
    reports BIGINT NOT NULL,
    running BIGINT NOT NULL,
    PRIMARY KEY (program, channel, week, version)
);

CREATE TABLE cell_counters (
    program TEXT NOT NULL,
    channel TEXT NOT NULL,
    week    TEXT NOT NULL,
    version TEXT NOT NULL,
    name    TEXT NOT NULL,
    value   BIGINT NOT NULL,
    PRIMARY KEY (program, channel, week, version, name)
);
