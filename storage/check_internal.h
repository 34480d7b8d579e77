/*
 * storage/check_internal.h - what the checker (check.c) found, handed to the
 * repair (repair.c). Not a public interface.
 *
 * Memory stays proportional to the damage, not to the filesystem: the
 * reverse map chunk -> (inode, byte range) and the paths are built only for
 * damaged chunks and the inodes that use them, in a second pass.
 *
 * The checker and the repair see and change the core only through
 * storage/fs_inspect.h. Locking: everything here is used with fs->lock
 * held (zf_fs_inspect_lock).
 */
#ifndef ZF_STORAGE_CHECK_INTERNAL_H
#define ZF_STORAGE_CHECK_INTERNAL_H

#include "common/htab.h"
#include "storage/check.h"
#include "storage/fs_inspect.h"

/* bytes [off, off + len) of inode ino map a damaged chunk */
struct ck_use {
	uint64_t ino, off, len;
};

struct ck_dmg {
	struct zf_walk_chunk c;	/* the chunk as the check found it */
	char why[256];		/* where and what, e.g. "in seg/...zseg offset 64: ..." */
	int local_only;		/* the bucket holds a good copy: drop the local one */
	int known;		/* marked damaged by an earlier repair: a note */
	struct ck_use *use;
	size_t nuse, cap;
};

/* a file range whose mapping was lost with a damaged EXTENTS record */
struct ck_range {
	uint64_t ino, start, end;
	const struct zf_salvage_note *note;
};

struct ck_ref {
	uint64_t ino;
	uint32_t links;		/* entries naming it (in reachable directories) */
	uint32_t subdirs;	/* for directories */
	uint64_t parent;	/* directory holding the (first) entry */
	int reached;
};

struct ck {
	struct zf_fs *fs;
	struct zf_inspect_state st;	/* the core when the check began */
	struct zf_check_report *rep;
	struct zf_htab refs;	/* ino -> struct ck_ref */
	struct zf_htab counts;	/* chunk identity -> uint64_t[2]: identity, extents */
	struct zf_htab dmg;	/* chunk identity -> struct ck_dmg */
	struct zf_htab paths;	/* ino -> struct ck_paths (inodes to be named) */
	struct ck_range *ranges;
	size_t nranges;
	uint64_t *drop_segs;	/* damaged local copies the bucket can replace */
	size_t ndrop;
};

void ck_problem(struct ck *ck, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ck_note(struct ck *ck, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* storage/check_chunks.c */
/* a chunk id in hex into buf (2 * ZF_CHUNK_ID_LEN + 1 bytes) */
void ck_chunk_hex(const struct zf_chunk_id *id, char *buf);
/* every chunk of the index: its reference count against ck->counts, and
 * (referenced) whether its bytes are where the index says; damage into
 * ck->dmg */
void ck_check_chunks(struct ck *ck);
/* segment files no chunk lives in: garbage, or kept when records are lost */
void ck_check_seg_dir(struct ck *ck);

/* storage/repair.c: act on what the check found; 0 or -errno */
int fs_repair(struct ck *ck);

#endif
