-- Signing keys and policy-token uses (migrations/0021).

-- name: signing_key_add
SELECT jobforge.signing_key_add_v1(%(key_id)s, %(public_key)s::bytea, %(owner)s,
                                   %(valid_from)s::timestamptz, %(valid_until)s::timestamptz) AS state

-- name: signing_key_revoke
SELECT jobforge.signing_key_revoke_v1(%(key_id)s, %(reason)s) AS changed

-- name: signing_key_rotate
SELECT jobforge.signing_key_rotate_v1(%(old)s, %(key_id)s, %(public_key)s::bytea, %(owner)s,
                                      make_interval(secs => %(overlap_s)s)) AS old_valid_until

-- name: signing_key_list
SELECT tenant_id, key_id, algorithm, public_key, owner, valid_from, valid_until, revoked_at,
       revoked_reason, created_at, created_by
FROM jobforge.signing_keys
WHERE tenant_id = jobforge.require_tenant()
ORDER BY created_at, key_id

-- name: signing_keys_of
-- The keys (tenant, key id) of the jobs a worker is about to admit, in one look-up.
SELECT k.tenant_id, k.key_id, k.algorithm, k.public_key, k.owner, k.valid_from, k.valid_until,
       k.revoked_at, k.revoked_reason, k.created_at, k.created_by
FROM unnest(%(tenants)s::text[], %(key_ids)s::text[]) AS w(tenant_id, key_id)
JOIN jobforge.signing_keys k ON k.tenant_id = w.tenant_id AND k.key_id = w.key_id

-- name: token_consume
SELECT jobforge.token_consume_v1(%(worker)s, %(id)s::bigint, %(token)s, %(jti)s,
                                 %(expires_at)s::timestamptz) AS state
