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
SELECT tenant_id, key_id, algorithm, public_key, owner, valid_from, valid_until, revoked_at,
       revoked_reason, created_at, created_by
FROM jobforge.signing_keys
WHERE tenant_id = %(tenant)s AND key_id = ANY(%(key_ids)s::text[])

-- name: token_consume
SELECT jobforge.token_consume_v1(%(worker)s, %(id)s::bigint, %(token)s, %(jti)s,
                                 %(expires_at)s::timestamptz) AS state
