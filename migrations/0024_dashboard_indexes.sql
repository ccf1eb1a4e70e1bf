-- The dashboard's overview on a big table ([10/10]).
--
-- The overview of one tenant reads its counts by type and state (jobforge.stats_v1) and its jobs
-- finished per minute over the last hour. With a million jobs both read every row of the tenant
-- from the heap: the succeeded count has no index that leads with the tenant and the status,
-- and the finished jobs' index (jobs_finished) leads with the type, not the tenant. Two indexes
-- make each an index-only scan of the rows it counts:
--
-- * jobs_by_tenant_status: (tenant_id, status, type), with the project for the project scope's
--   filter: stats_v1's per-state counts of one tenant (succeeded among them) read the index
--   alone, the pages a vacuum marked all-visible never touching the heap.
-- * jobs_finished_by_tenant: (tenant_id, finished_at) of finished jobs, with status and project:
--   the last hour's finished jobs of one tenant are one short range of it.
--
-- Their cost is one more index entry per state change of a job (claim, finish, retry): a state
-- change already updates indexed columns (status is in the predicates of jobs_fair, jobs_leased
-- and jobs_settled), so it is never a HOT update and its row already gets new index entries.
CREATE INDEX jobs_by_tenant_status ON jobforge.jobs (tenant_id, status, type) INCLUDE (project);
CREATE INDEX jobs_finished_by_tenant ON jobforge.jobs (tenant_id, finished_at)
    INCLUDE (status, project) WHERE finished_at IS NOT NULL;
