/*
 * daemon/stats_print.c - the text and JSON of 'zerofs stats' (see
 * stats_print.h)
 *
 * The text is one "label: value" line a counter, the label padded to 19
 * columns; scripts take the first number of a line (--bytes keeps it a
 * byte count). A ratio of nothing is not printed as a ratio: no fetches
 * have no hit ratio, no data no dedup ratio, and a store too small for
 * its headers no meaningful compression ratio (COMPRESSION_MIN).
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "daemon/stats_print.h"

/*
 * Below this many raw bytes stored the compression ratio says more about
 * the super-chunk and segment headers (a few hundred bytes each) than
 * about the data: a few small files show "0.07". It is then not printed.
 */
#define COMPRESSION_MIN (1u << 20)

static const char *const form_names[] = { "human", "bytes", "json", "prometheus" };

int zf_stats_form_parse(const char *s, enum zf_stats_form *ret)
{
	size_t i;

	for (i = 0; i < sizeof(form_names) / sizeof(form_names[0]); i++) {
		if (!strcmp(s, form_names[i])) {
			*ret = (enum zf_stats_form)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *zf_stats_form_name(enum zf_stats_form form)
{
	return form_names[form];
}

/* ---- text ---- */

struct text {
	FILE *out;
	int human;
	char buf[4][32];	/* sizes of one line */
	int next;
};

/*
 * v as a size: "1.5 MiB", or (--bytes) "1572864", with_unit "1572864
 * bytes"; valid until 4 more calls
 */
static const char *size_str(struct text *t, uint64_t v, int with_unit)
{
	char *b = t->buf[t->next++ % 4];

	if (t->human)
		zf_size_human(v, b, sizeof(t->buf[0]));
	else
		snprintf(b, sizeof(t->buf[0]), "%" PRIu64 "%s", v, with_unit ? " bytes" : "");
	return b;
}

/* for a label that says "bytes" already */
static const char *sz(struct text *t, uint64_t v)
{
	return size_str(t, v, 0);
}

/* for one that does not */
static const char *szu(struct text *t, uint64_t v)
{
	return size_str(t, v, 1);
}

static double ratio(uint64_t a, uint64_t b)
{
	return b ? (double)a / b : 1.0;
}

static void text_fs(struct text *t, const struct zf_fs_stats *s)
{
	FILE *out = t->out;

	fprintf(out, "inodes:            %" PRIu64 " (%" PRIu64 " files, %" PRIu64 " directories)\n",
		s->inodes, s->files, s->dirs);
	fprintf(out, "logical bytes:     %s\n", sz(t, s->logical_bytes));
	fprintf(out, "referenced bytes:  %s\n", sz(t, s->referenced_bytes));
	fprintf(out, "unique bytes:      %s\n", sz(t, s->unique_bytes));
	fprintf(out, "stored bytes:      %s\n", sz(t, s->stored_bytes));
	fprintf(out, "stored live bytes: %s (the rest is garbage for zerofs gc)\n",
		sz(t, s->stored_live_bytes));
	if (s->unique_bytes)
		fprintf(out, "dedup ratio:       %.2f\n", ratio(s->referenced_bytes, s->unique_bytes));
	else
		fprintf(out, "dedup ratio:       - (no data yet)\n");
	if (s->stored_raw_bytes >= COMPRESSION_MIN && s->stored_bytes)
		fprintf(out, "compression ratio: %.2f\n", ratio(s->stored_raw_bytes, s->stored_bytes));
	else if (s->stored_bytes)
		fprintf(out, "compression ratio: - (too little stored to tell: %s raw in %s)\n",
			szu(t, s->stored_raw_bytes), szu(t, s->stored_bytes));
	else
		fprintf(out, "compression ratio: - (nothing stored yet)\n");
	fprintf(out, "chunks:            %" PRIu64 " (%" PRIu64 " referenced, %" PRIu64 " shared)\n",
		s->chunks, s->chunks_live, s->chunks_shared);
	fprintf(out, "segments:          %" PRIu64 "\n", s->segments);
	fprintf(out, "log bytes:         %s\n", sz(t, s->log_bytes));
	fprintf(out, "buffered bytes:    %s\n", sz(t, s->dirty_bytes));
	if (t->human)
		fprintf(out, "memory:            %s budget: buffers %s of %s, pipeline %s, ",
			sz(t, s->mem_budget), sz(t, s->dirty_bytes), sz(t, s->dirty_limit),
			sz(t, s->pipe_bytes));
	else
		fprintf(out, "memory:            %" PRIu64 " MiB budget: buffers %" PRIu64 " of %"
			PRIu64 " MiB, pipeline %" PRIu64 " MiB, ", s->mem_budget >> 20,
			s->dirty_bytes >> 20, s->dirty_limit >> 20, s->pipe_bytes >> 20);
	if (t->human)
		fprintf(out, "cache %s of %s\n", sz(t, s->sc_cache_bytes), sz(t, s->sc_cache_max));
	else
		fprintf(out, "cache %" PRIu64 " of %" PRIu64 " MiB\n", s->sc_cache_bytes >> 20,
			s->sc_cache_max >> 20);
	fprintf(out, "pipeline:          %" PRIu64 " super-chunks built (%" PRIu64 " at the fast "
		"level, %" PRIu64 " stored raw), %" PRIu64 " decompressed ahead\n", s->packs,
		s->fast_packs, s->raw_packs, s->readahead);
	fprintf(out, "cache hits/misses: %" PRIu64 "/%" PRIu64 "\n", s->cache_hits,
		s->cache_misses);
	fprintf(out, "commits/fsyncs:    %" PRIu64 "/%" PRIu64 "\n", s->commits, s->fsyncs);
	fprintf(out, "healed:            %" PRIu64 " super-chunks (damaged local copies replaced "
		"by the bucket's)\n", s->healed);
}

static void text_remote(struct text *t, const struct zf_remote_stats *s)
{
	FILE *out = t->out;

	fprintf(out, "pending upload:    %s (%" PRIu64 " segments, %" PRIu64 " log records)\n",
		szu(t, s->pending_bytes), s->pending_segs, s->pending_records);
	if (s->offline_since) {
		time_t when = (time_t)s->offline_since;
		char at[32] = "?";
		struct tm tm;

		if (localtime_r(&when, &tm))
			strftime(at, sizeof(at), "%Y-%m-%d %H:%M:%S", &tm);
		fprintf(out, "bucket:            offline since %s: %s (local data is served, "
			"uploads wait)\n", at, s->offline_why);
	} else {
		fprintf(out, "bucket:            online\n");
	}
	if (s->failing_since) {
		time_t when = (time_t)s->failing_since;
		char at[32] = "?";
		struct tm tm;

		if (localtime_r(&when, &tm))
			strftime(at, sizeof(at), "%Y-%m-%d %H:%M:%S", &tm);
		fprintf(out, "uploads:           failing since %s: %s\n", at, s->failing_why);
	}
	fprintf(out, "recovery point:    %.1f s (age of the oldest byte not in the bucket)\n",
		s->oldest_pending_s);
	fprintf(out, "uploaded:          %s (%.1f MB/s; %" PRIu64 " objects, %u PUTs in flight)\n",
		szu(t, s->uploaded_bytes), s->upload_rate / 1e6, s->uploaded_objects,
		s->puts_in_flight);
	fprintf(out, "fetched:           %s (%.1f MB/s; %s read ahead)\n",
		szu(t, s->fetched_bytes), s->fetch_rate / 1e6, sz(t, s->prefetched_bytes));
	fprintf(out, "fetch cache:       %" PRIu64 " hits, %" PRIu64 " misses", s->fetch_hits,
		s->fetch_misses);
	if (s->fetch_hits + s->fetch_misses)
		fprintf(out, " (hit ratio %.2f)", ratio(s->fetch_hits, s->fetch_hits + s->fetch_misses));
	fprintf(out, "\n");
	if (s->local_budget)
		fprintf(out, "dev-dir data:      %s of %s budget (cache_size)\n",
			szu(t, s->local_bytes), szu(t, s->local_budget));
	else
		fprintf(out, "dev-dir data:      %s (no budget: -o cache_size is not set)\n",
			szu(t, s->local_bytes));
	fprintf(out, "pinned data:       %s (kept in the dev-dir)\n", szu(t, s->pinned_bytes));
	fprintf(out, "evictions:         %" PRIu64 " segments\n", s->evictions);
	fprintf(out, "write stalls:      %" PRIu64 " (backpressure)\n", s->stalls);
	if (!s->replica)
		fprintf(out, "uploaded up to:    log record %" PRIu64 "%s\n", s->uploaded_seq,
			s->fenced ? " (FENCED: another writer holds the lease)" : "");
	if (s->replica) {
		fprintf(out, "replica:           at log record %" PRIu64 " of the writer's %" PRIu64
			" (%" PRIu64 " behind, for %.1f s); head read %.0f s ago; %" PRIu64
			" reloads; %" PRIu64 " reads re-resolved\n", s->applied_seq, s->writer_seq,
			s->writer_seq - s->applied_seq, s->behind_s,
			s->polled ? difftime(time(NULL), (time_t)s->polled) : -1.0, s->reloads,
			s->stale_reads);
		if (*s->follow_why)
			fprintf(out, "replica problem:   %s\n", s->follow_why);
	}
}

static void text_pending(struct text *t, const struct zf_remote_pending *p)
{
	fprintf(t->out, "pending upload:    %s (%" PRIu64 " segments, %" PRIu64 " log records)%s\n",
		szu(t, p->bytes), p->segs, p->records,
		p->bytes || p->segs || p->records ? ": not in the bucket yet, the next mount "
						    "uploads them" : "");
}

/* ---- JSON ---- */

/* s as a JSON string, quotes included */
static void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

#define J(key, v) fprintf(out, ",\n  \"" key "\": %" PRIu64, (uint64_t)(v))
#define JB(key, v) fprintf(out, ",\n    \"" key "\": %" PRIu64, (uint64_t)(v))

static void json_fs(FILE *out, const struct zf_fs_stats *s)
{
	J("inodes", s->inodes);
	J("files", s->files);
	J("directories", s->dirs);
	J("logical_bytes", s->logical_bytes);
	J("referenced_bytes", s->referenced_bytes);
	J("unique_bytes", s->unique_bytes);
	J("stored_bytes", s->stored_bytes);
	J("stored_raw_bytes", s->stored_raw_bytes);
	J("stored_live_bytes", s->stored_live_bytes);
	if (s->unique_bytes)
		fprintf(out, ",\n  \"dedup_ratio\": %.4f",
			ratio(s->referenced_bytes, s->unique_bytes));
	else
		fprintf(out, ",\n  \"dedup_ratio\": null");
	if (s->stored_raw_bytes >= COMPRESSION_MIN && s->stored_bytes)
		fprintf(out, ",\n  \"compression_ratio\": %.4f",
			ratio(s->stored_raw_bytes, s->stored_bytes));
	else
		fprintf(out, ",\n  \"compression_ratio\": null");
	J("chunks", s->chunks);
	J("chunks_referenced", s->chunks_live);
	J("chunks_shared", s->chunks_shared);
	J("segments", s->segments);
	J("log_bytes", s->log_bytes);
	J("buffered_bytes", s->dirty_bytes);
	J("memory_budget_bytes", s->mem_budget);
	J("memory_buffers_limit_bytes", s->dirty_limit);
	J("memory_pipeline_bytes", s->pipe_bytes);
	J("memory_cache_bytes", s->sc_cache_bytes);
	J("memory_cache_limit_bytes", s->sc_cache_max);
	J("superchunks_built", s->packs);
	J("superchunks_fast", s->fast_packs);
	J("superchunks_raw", s->raw_packs);
	J("superchunks_read_ahead", s->readahead);
	J("cache_hits", s->cache_hits);
	J("cache_misses", s->cache_misses);
	J("commits", s->commits);
	J("fsyncs", s->fsyncs);
	J("healed_superchunks", s->healed);
}

static void json_remote(FILE *out, const struct zf_remote_stats *s)
{
	fprintf(out, ",\n  \"bucket\": {\n    \"pending_bytes\": %" PRIu64, s->pending_bytes);
	JB("pending_segments", s->pending_segs);
	JB("pending_log_records", s->pending_records);
	fprintf(out, ",\n    \"online\": %s", s->offline_since ? "false" : "true");
	if (s->offline_since) {
		fprintf(out, ",\n    \"offline_since\": %" PRId64 ",\n    \"offline_reason\": ",
			s->offline_since);
		json_str(out, s->offline_why);
	} else {
		fprintf(out, ",\n    \"offline_since\": null,\n    \"offline_reason\": null");
	}
	if (s->failing_since) {
		fprintf(out, ",\n    \"upload_failing_since\": %" PRId64 ",\n    "
			"\"upload_failure\": ", s->failing_since);
		json_str(out, s->failing_why);
	} else {
		fprintf(out, ",\n    \"upload_failing_since\": null,\n    \"upload_failure\": null");
	}
	fprintf(out, ",\n    \"recovery_point_seconds\": %.3f", s->oldest_pending_s);
	JB("uploaded_bytes", s->uploaded_bytes);
	JB("uploaded_objects", s->uploaded_objects);
	fprintf(out, ",\n    \"puts_in_flight\": %u", s->puts_in_flight);
	fprintf(out, ",\n    \"upload_rate_bytes_per_second\": %.0f", s->upload_rate);
	JB("fetched_bytes", s->fetched_bytes);
	fprintf(out, ",\n    \"fetch_rate_bytes_per_second\": %.0f", s->fetch_rate);
	JB("prefetched_bytes", s->prefetched_bytes);
	JB("fetch_cache_hits", s->fetch_hits);
	JB("fetch_cache_misses", s->fetch_misses);
	if (s->fetch_hits + s->fetch_misses)
		fprintf(out, ",\n    \"fetch_cache_hit_ratio\": %.4f",
			ratio(s->fetch_hits, s->fetch_hits + s->fetch_misses));
	else
		fprintf(out, ",\n    \"fetch_cache_hit_ratio\": null");
	JB("local_bytes", s->local_bytes);
	if (s->local_budget)
		JB("local_budget_bytes", s->local_budget);
	else
		fprintf(out, ",\n    \"local_budget_bytes\": null");
	JB("pinned_bytes", s->pinned_bytes);
	JB("evicted_segments", s->evictions);
	JB("write_stalls", s->stalls);
	JB("uploaded_log_record", s->uploaded_seq);
	fprintf(out, ",\n    \"fenced\": %s", s->fenced ? "true" : "false");
	if (s->replica) {
		fprintf(out, ",\n    \"replica\": {\n      \"applied_log_record\": %" PRIu64
			",\n      \"writer_log_record\": %" PRIu64 ",\n      \"behind_seconds\": %.3f"
			",\n      \"head_read_at\": %" PRId64 ",\n      \"reloads\": %" PRIu64
			",\n      \"reads_re_resolved\": %" PRIu64 ",\n      \"problem\": ",
			s->applied_seq, s->writer_seq, s->behind_s, s->polled, s->reloads,
			s->stale_reads);
		if (*s->follow_why)
			json_str(out, s->follow_why);
		else
			fputs("null", out);
		fputs("\n    }", out);
	}
	fputs("\n  }", out);
}

static void json_pending(FILE *out, const struct zf_remote_pending *p)
{
	fprintf(out, ",\n  \"bucket\": {\n    \"pending_bytes\": %" PRIu64, p->bytes);
	JB("pending_segments", p->segs);
	JB("pending_log_records", p->records);
	fprintf(out, "\n  }");
}

void zf_stats_print(FILE *out, const struct zf_stats_view *v, enum zf_stats_form form)
{
	struct text t = { .out = out, .human = form == ZF_STATS_HUMAN };

	if (form == ZF_STATS_PROMETHEUS) {
		zf_stats_print_prometheus(out, v);
		return;
	}
	if (form == ZF_STATS_JSON) {
		fprintf(out, "{\n  \"source\": \"%s\"", v->mounted ? "mount" : "dev-dir");
		json_fs(out, v->fs);
		if (v->rm)
			json_remote(out, v->rm);
		else if (v->pending)
			json_pending(out, v->pending);
		else
			fprintf(out, ",\n  \"bucket\": null");
		fprintf(out, "\n}\n");
		return;
	}
	text_fs(&t, v->fs);
	if (v->rm)
		text_remote(&t, v->rm);
	else if (v->pending)
		text_pending(&t, v->pending);
}
