"""How a worker takes jobs off arq's queue: every due job it has room for, read and claimed in one round trip.

arq's own poll (`Worker._poll_iteration` + `Worker.start_jobs`) reads up to `queue_read_limit` due ids, then claims
them one at a time, each with WATCH, EXISTS, ZSCORE and MULTI/PSETEX/EXEC: four round trips and six commands per
job, in sequence, before the next job may start. `TAKE` keeps arq's semantics (due jobs in queue order; a
job claimed by any worker is left alone; the claim is arq's in-progress key, so arq's `run_job` and `finish_job`
work on it unchanged) in one atomic script. For jobs queued by this service (those with a record) it also records
and announces the start, and claims them for CLAIM_TTL_S, which the worker's claim keeper renews (`claims`), instead
of arq's lifetime of the longest timeout + 10 s. Jobs queued by another client keep arq's claim.
"""

from dataclasses import dataclass

from arq.connections import ArqRedis
from arq.constants import in_progress_key_prefix, retry_key_prefix
from arq.utils import timestamp_ms

from service.core import keys
from service.core.record import LUA_ANNOUNCE, lua
from service.core.scripts import LuaScript

REPLIES_PER_JOB = 7

# Returns first when the next job not yet due in any of these queues is due (ms; -1 if none is among the first
# `count` of its queue, or if every free slot was filled: the worker then looks again as one of its jobs ends),
# then seven values per claimed job: id, queue score, whether the start was recorded (and the claim is short),
# whether an abort was asked for before, the owner (or ''), the index of its queue in KEYS, its callback URL (or '').
# The queues are read in order, so while a job of an earlier queue is due it is taken first. Keys other than the
# queues are named from ARGV prefixes, not declared in KEYS: the script is for one server, as arq is (no Redis
# Cluster).
# KEYS: the worker's queues, in priority order. ARGV: now ms, arq's claim lifetime ms, read count per queue, free
# slots, short claim ms, worker id, then the prefixes: in-progress, retry counter, record, events channel.
TAKE = LuaScript(
    "take",
    lua(
        """
local now, claim_ms, count, short_claim_ms, worker = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[5], ARGV[6]
local claim_prefix, retry_prefix, record_prefix, events_prefix = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local free, taken, next_due = tonumber(ARGV[4]), {-1}, false
for q = 1, #KEYS do
  if free == 0 then break end  -- full: the next due time does not matter, the worker looks again as jobs end
  -- The queue's first `count` entries by score: the due ones first, then (if fewer were due) the next to be due.
  local head = redis.call('ZRANGE', KEYS[q], 0, count - 1, 'WITHSCORES')
  for i = 1, #head, 2 do
    if free == 0 then break end
    local id, score = head[i], tonumber(head[i + 1])
    if score > now then
      if not next_due or score < next_due then next_due = score end
      break
    end
    local claim = claim_prefix .. id
    if redis.call('EXISTS', claim) == 0 then
      free = free - 1
      local lifetime, recorded, abort = claim_ms, 0, 0
      local record = record_prefix .. id
      local seen = redis.call('HMGET', record, '$enqueued_at', '$abort_requested', '$owner', '$callback_url')
      if seen[1] then
        lifetime, recorded = short_claim_ms, 1
        if seen[2] then abort = 1 end
        -- arq's run_job counts this try next (INCR of the retry counter): this is its number.
        local attempt = tonumber(redis.call('GET', retry_prefix .. id) or '0') + 1
        redis.call('HSET', record, '$started_at', ARGV[1], '$attempt', attempt, '$worker', worker,
                   '$try:' .. attempt, ARGV[1] .. ' ' .. worker)
        local events_key = events_prefix .. id
        $announce
      end
      redis.call('PSETEX', claim, lifetime, '1')
      for _, value in ipairs({id, head[i + 1], recorded, abort, seen[3] or '', q - 1, seen[4] or ''}) do
        taken[#taken + 1] = value
      end
    end
  end
end
if next_due then taken[1] = next_due end
return taken
""".replace("$announce", LUA_ANNOUNCE)
    ),
)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A job the take script claimed for this worker."""

    job_id: str
    score: int
    recorded: bool  # its start is recorded and announced, and its claim is the short one the keeper renews
    abort_requested: bool
    owner: str | None
    queue_key: str  # the queue it was taken from
    callback_url: str | None = None  # where its webhook goes when it ends


async def take(
    pool: ArqRedis,
    queue_keys: list[str],
    *,
    count: int,
    free: int,
    claim_ms: int,
    short_claim_ms: int,
    worker_id: str,
) -> tuple[list[Claimed], int | None]:
    """Claim up to `free` of the due jobs of `queue_keys`, earlier queues first; returns them, and when the next
    job not due yet is due (ms), if there is one."""
    prefixes = [in_progress_key_prefix, retry_key_prefix, keys.job_record(""), keys.job_events("")]
    args: list[str | int] = [timestamp_ms(), claim_ms, count, free, short_claim_ms, worker_id, *prefixes]
    replies = await TAKE.run(pool, queue_keys, args)
    next_due, jobs = int(replies[0]), replies[1:]
    claimed = []
    for n in range(0, len(jobs), REPLIES_PER_JOB):
        raw_id, score, recorded, abort, owner, queue, callback = jobs[n : n + REPLIES_PER_JOB]
        claimed.append(
            Claimed(
                raw_id.decode(),
                int(float(score)),
                recorded == 1,
                abort == 1,
                owner.decode() or None,
                queue_keys[int(queue)],
                callback.decode() or None,
            )
        )
    return claimed, (next_due if next_due >= 0 else None)
