-- Artifacts (migrations/0017): blobs stored content-addressed per tenant, in 1 MiB chunks.

-- name: artifact_put
SELECT jobforge.artifact_put_v1(%(worker)s, %(id)s::bigint, %(token)s, %(tenant)s, %(sha256)s,
    %(data)s::bytea, %(now)s) AS state

-- name: artifact_begin
SELECT jobforge.artifact_begin_v1(%(worker)s, %(id)s::bigint, %(token)s, %(tenant)s, %(sha256)s,
    %(size)s::bigint, %(now)s) AS state

-- name: artifact_chunk
SELECT jobforge.artifact_chunk_v1(%(worker)s, %(id)s::bigint, %(token)s, %(sha256)s,
    %(seq)s::integer, %(data)s::bytea) AS stored

-- name: artifact_finish
SELECT jobforge.artifact_finish_v1(%(worker)s, %(id)s::bigint, %(token)s, %(sha256)s) AS stored

-- name: artifact_blob
-- A blob of the tenant asked for (row-level security binds it too): its size, chunk count and
-- whether every chunk arrived.
SELECT size, chunks, complete FROM jobforge.artifact_blobs
WHERE tenant_id = %(tenant)s AND sha256 = %(sha256)s

-- name: artifact_read_chunk
-- One chunk: a large blob is read a chunk per statement, never whole in one value.
SELECT data FROM jobforge.artifact_chunks
WHERE tenant_id = %(tenant)s AND sha256 = %(sha256)s AND seq = %(seq)s

-- name: artifact_refs
-- The artifacts of a job's run records (the caller has checked the job is visible), by run.
SELECT r.id AS run_id, r.attempt, a.name, a.sha256, a.size
FROM jobforge.job_runs r
JOIN jobforge.artifact_refs a ON a.lease_token = r.lease_token
WHERE r.job_id = %(id)s AND r.tenant_id = jobforge.current_tenant()
  AND a.tenant_id = jobforge.current_tenant()
ORDER BY r.id, a.name

-- name: artifact_prune
SELECT blobs, bytes, after_at, after_tenant, after_sha
FROM jobforge.prune_artifacts_v1(%(tenant)s, %(grace)s, %(batch)s, %(dry_run)s, %(after_at)s,
    %(after_tenant)s, %(after_sha)s, %(now)s)
