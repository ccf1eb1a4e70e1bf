-- An audit trail with actors ([6/10]): who did it, through which login, and why.
--
-- Every event (job_events) now says
--   login:  the database login whose session wrote it (session_user: a SECURITY DEFINER function
--           does not change it, and no caller can set it: the one field an attacker cannot forge);
--   actor:  who acted through that login, as the client says (a user, a service, an API token's
--           name): the transaction's setting jobforge.actor, which jobforge's clients set beside
--           the tenant (QueueClient(actor=...), the CLI's --actor / JOBFORGE_ACTOR). A claim, not
--           a proof: an app login may name any actor, so trust it as far as the login;
--   reason: why, for a manual change (cancel, retry, reschedule): the setting jobforge.reason.
-- They are column defaults, so every event written in the transaction carries them, by every
-- function that writes events, now and later: enqueue ('created'), cancel, reschedule, the bulk
-- actions, and the worker's own events (whose actor is unset unless its client sets one). A
-- setting too long or with control characters is refused by the table's checks: the action
-- fails in one line, nothing is written.
--
-- Events with an actor are indexed by tenant and time (partial: the worker's events, written
-- without one, cost no index write), for `jobforge audit list|summary`.

ALTER TABLE jobforge.job_events
    ADD COLUMN login text,
    ADD COLUMN actor text,
    ADD COLUMN reason text;
ALTER TABLE jobforge.job_events
    ALTER COLUMN login SET DEFAULT session_user,
    ALTER COLUMN actor SET DEFAULT nullif(pg_catalog.current_setting('jobforge.actor', true), ''),
    ALTER COLUMN reason SET DEFAULT nullif(pg_catalog.current_setting('jobforge.reason', true), ''),
    -- no control characters, and none of the invisible ones that make one name look like
    -- another (zero-width spaces and joiners, direction overrides, line separators, BOM)
    ADD CONSTRAINT job_events_actor_shape CHECK (actor IS NULL OR (
        length(actor) BETWEEN 1 AND 200
        AND actor !~ '[[:cntrl:]\u0080-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]')),
    ADD CONSTRAINT job_events_reason_shape
        CHECK (reason IS NULL OR (length(reason) BETWEEN 1 AND 1000 AND reason !~ '[\x01-\x08\x0b-\x1f\x7f]'));

CREATE INDEX job_events_audit ON jobforge.job_events (tenant_id, at, id) WHERE actor IS NOT NULL;
