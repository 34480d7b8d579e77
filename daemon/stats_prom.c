/*
 * daemon/stats_prom.c - 'zerofs stats --prometheus': the Prometheus text
 * exposition format (version 0.0.4) of what 'zerofs stats' shows
 *
 * One metric a line, each with its HELP and TYPE; names follow the
 * Prometheus conventions: prefix zerofs_, base units in the name (_bytes,
 * _seconds), counters end in _total, a state is a 0/1 gauge. Rates and
 * ratios are left out: Prometheus computes them from the counters
 * (rate(zerofs_bucket_uploaded_bytes_total[5m])). Counters count since the
 * mount (or, for an unmounted dev-dir, are 0). The same text goes to a
 * mount's metrics_file for node_exporter's textfile collector
 * (daemon/metrics.c). Pure formatting: no locks, no I/O but the stream.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>

#include "daemon/stats_print.h"

static void metric(FILE *out, const char *name, const char *type, const char *help,
		   uint64_t v)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type, name,
		v);
}

#define GAUGE(name, help, v) metric(out, "zerofs_" name, "gauge", help, v)
#define COUNTER(name, help, v) metric(out, "zerofs_" name "_total", "counter", help, v)

static void prom_fs(FILE *out, const struct zf_fs_stats *s)
{
	GAUGE("inodes", "Inodes in the filesystem.", s->inodes);
	GAUGE("files", "Regular files in the filesystem.", s->files);
	GAUGE("directories", "Directories in the filesystem.", s->dirs);
	GAUGE("logical_bytes", "Sum of the sizes of all files.", s->logical_bytes);
	GAUGE("referenced_bytes", "Bytes mapped by file extents (holes excluded).",
	      s->referenced_bytes);
	GAUGE("unique_bytes", "Uncompressed bytes of the chunks files reference (after dedup).",
	      s->unique_bytes);
	GAUGE("stored_bytes", "Compressed bytes of the super-chunks stored.", s->stored_bytes);
	GAUGE("stored_raw_bytes", "Uncompressed bytes of the super-chunks stored.",
	      s->stored_raw_bytes);
	GAUGE("stored_live_bytes", "Stored bytes of referenced chunks (the rest is garbage for gc).",
	      s->stored_live_bytes);
	GAUGE("chunks", "Chunks in the chunk index.", s->chunks);
	GAUGE("chunks_referenced", "Chunks some file references.", s->chunks_live);
	GAUGE("chunks_shared", "Chunks referenced more than once (deduplicated).",
	      s->chunks_shared);
	GAUGE("segments", "Segments the chunk index references.", s->segments);
	GAUGE("log_bytes", "Metadata log bytes since the last checkpoint.", s->log_bytes);
	GAUGE("buffered_bytes", "Written bytes buffered in memory, not yet chunked.",
	      s->dirty_bytes);
	GAUGE("memory_budget_bytes", "Memory budget of the data path (-o mem).", s->mem_budget);
	GAUGE("memory_buffers_limit_bytes", "The write buffers' share of the memory budget.",
	      s->dirty_limit);
	GAUGE("memory_pipeline_bytes", "Memory of super-chunks being filled, compressed or written.",
	      s->pipe_bytes);
	GAUGE("memory_cache_bytes", "Memory of the decompressed super-chunk cache.",
	      s->sc_cache_bytes);
	GAUGE("memory_cache_limit_bytes", "Bound of the decompressed super-chunk cache.",
	      s->sc_cache_max);
	COUNTER("superchunks_built", "Super-chunks built by the write pipeline.", s->packs);
	COUNTER("superchunks_fast", "Super-chunks compressed at the fast level (backpressure).",
		s->fast_packs);
	COUNTER("superchunks_raw", "Super-chunks stored uncompressed (incompressible data).",
		s->raw_packs);
	COUNTER("superchunks_read_ahead", "Super-chunks decompressed ahead of readers.",
		s->readahead);
	COUNTER("cache_hits", "Reads served by the decompressed super-chunk cache.",
		s->cache_hits);
	COUNTER("cache_misses", "Reads that had to decompress a super-chunk.", s->cache_misses);
	COUNTER("commits", "Metadata log commits.", s->commits);
	COUNTER("fsyncs", "fsync(2) calls made for durability.", s->fsyncs);
	COUNTER("healed_superchunks", "Damaged local super-chunks replaced by the bucket's copy.",
		s->healed);
}

/* what the bucket lacks: of a mount and of an unmounted dev-dir alike */
static void prom_pending(FILE *out, uint64_t bytes, uint64_t segs, uint64_t records)
{
	GAUGE("bucket_pending_bytes", "Bytes written but not yet in the bucket.", bytes);
	GAUGE("bucket_pending_segments", "Segment files not yet in the bucket.", segs);
	GAUGE("bucket_pending_log_records", "Committed log records not yet in the bucket.",
	      records);
}

static void prom_remote(FILE *out, const struct zf_remote_stats *s)
{
	prom_pending(out, s->pending_bytes, s->pending_segs, s->pending_records);
	GAUGE("bucket_online", "1 while the bucket answers, 0 while it is offline.",
	      !s->offline_since);
	if (s->replica) {
		GAUGE("replica_behind_log_records",
		      "Log records the writer published that this replica has not applied.",
		      s->writer_seq - s->applied_seq);
		fprintf(out, "# HELP zerofs_replica_behind_seconds How long this replica has been "
			"behind its writer (0: it is not).\n# TYPE zerofs_replica_behind_seconds "
			"gauge\nzerofs_replica_behind_seconds %.3f\n", s->behind_s);
	}
	GAUGE("bucket_upload_failing", "1 while uploads fail for a reason other than an outage.",
	      s->failing_since != 0);
	fprintf(out, "# HELP zerofs_bucket_recovery_point_seconds Age of the oldest written byte "
		"not yet in the bucket.\n# TYPE zerofs_bucket_recovery_point_seconds gauge\n"
		"zerofs_bucket_recovery_point_seconds %.3f\n", s->oldest_pending_s);
	COUNTER("bucket_uploaded_bytes", "Bytes uploaded to the bucket.", s->uploaded_bytes);
	COUNTER("bucket_uploaded_objects",
		"Objects put into the bucket (segments, checkpoints, log pieces, heads).",
		s->uploaded_objects);
	GAUGE("bucket_puts_in_flight", "Segment and metadata PUTs under way now.",
	      s->puts_in_flight);
	COUNTER("bucket_fetched_bytes", "Bytes fetched from the bucket.", s->fetched_bytes);
	COUNTER("bucket_prefetched_bytes", "Bytes fetched ahead of sequential readers.",
		s->prefetched_bytes);
	COUNTER("bucket_fetch_cache_hits", "Fetches served by the local fetch cache.",
		s->fetch_hits);
	COUNTER("bucket_fetch_cache_misses", "Fetches that went to the bucket.", s->fetch_misses);
	GAUGE("bucket_local_bytes", "Data bytes kept in the dev-dir.", s->local_bytes);
	GAUGE("bucket_local_budget_bytes", "Budget of the dev-dir's data (-o cache_size; 0: none).",
	      s->local_budget);
	GAUGE("bucket_pinned_bytes", "Dev-dir bytes that pinned files keep.", s->pinned_bytes);
	COUNTER("bucket_evicted_segments", "Segments evicted from the dev-dir.", s->evictions);
	COUNTER("bucket_write_stalls", "Writes that waited for room (backpressure).", s->stalls);
	GAUGE("bucket_uploaded_log_record", "The last log record in the bucket.", s->uploaded_seq);
	GAUGE("bucket_fenced", "1 when another writer took the bucket's lease.", s->fenced != 0);
}

void zf_stats_print_prometheus(FILE *out, const struct zf_stats_view *v)
{
	GAUGE("mounted", "1 when read from a mount's daemon, 0 from an unmounted dev-dir.",
	      v->mounted != 0);
	prom_fs(out, v->fs);
	if (v->rm)
		prom_remote(out, v->rm);
	else if (v->pending)
		prom_pending(out, v->pending->bytes, v->pending->segs, v->pending->records);
}
