/*
 * storage/seal.h - what bucket objects look like on the wire: compressed
 * metadata and authenticated encryption (docs/FORMAT.md "Sealed objects")
 *
 * The dev-dir holds every structure in the clear; what leaves the machine
 * goes through here. Two features of the superblock decide what happens:
 *   ZF_FEAT_META_ZSTD  checkpoints and log pieces travel as one zstd frame;
 *   ZF_FEAT_ENCRYPT    every object but `superblock` and `keys` is sealed
 *                      with XChaCha20-Poly1305 (libsodium) under a key
 *                      derived from the filesystem's master key.
 * A whole object is nonce (24, random) | ciphertext | tag (16); its
 * associated data binds it to its filesystem and its key, so an object put
 * under another key, or another filesystem's, does not open.
 * A segment keeps its size and the offsets of its super-chunks, so a ranged
 * GET of one super-chunk (or of a run of them) still opens alone: each unit
 * (header, super-chunk, footer) is sealed in place, the bytes the seal needs
 * taken from fields that can be recomputed (checksums, the fsid). The
 * header unit carries the segment's random nonce; unit k's nonce is it with
 * its offset xored into the last 8 bytes, so nonces never repeat within a
 * segment, and 128 random bits part them across segments and re-uploads.
 * Errors: -EBADMSG when an object does not open (damaged, truncated,
 * swapped, another filesystem's, a wrong key), with the reason in why.
 */
#ifndef ZF_STORAGE_SEAL_H
#define ZF_STORAGE_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define ZF_KEY_LEN 32		/* a master key, and every key derived from it */
#define ZF_SEG_NONCE_LEN 24

struct zf_seal {
	uint32_t features;	/* the superblock's ZF_FEAT_META_ZSTD | ZF_FEAT_ENCRYPT */
	uint8_t fsid[16];
	uint8_t key[ZF_KEY_LEN];	/* with ZF_FEAT_ENCRYPT: the objects' key */
};

/* the subkeys of a master key: the chunking secret and the objects' key */
void zf_seal_chunk_secret(const uint8_t master[ZF_KEY_LEN], uint8_t secret[ZF_KEY_LEN]);
/* s for a filesystem; master is needed (and used) only with ZF_FEAT_ENCRYPT */
void zf_seal_init(struct zf_seal *s, uint32_t features, const uint8_t fsid[16],
		  const uint8_t *master);

/* does the object under key leave the machine as it is (superblock, keys, or no feature)? */
int zf_seal_is_plain(const struct zf_seal *s, const char *key);

/*
 * Whole objects: what to PUT under key for in[0..len), and what a GET of
 * key means. Either returns a malloc'd buffer in *ret (the caller frees it)
 * with *ret_len bytes; for a plain object that is a copy.
 */
int zf_seal_obj(const struct zf_seal *s, const char *key, const void *in, size_t len,
		void **ret, size_t *ret_len);
int zf_unseal_obj(const struct zf_seal *s, const char *key, const void *in, size_t len,
		  void **ret, size_t *ret_len, char *why, size_t why_len);

/*
 * Segments, in place (sizes never change). zf_seal_seg seals a whole
 * sealed segment image of segment seg; zf_unseal_seg opens one (whole
 * object GETs: fsck, audit). A no-op without ZF_FEAT_ENCRYPT.
 */
int zf_seal_seg(const struct zf_seal *s, uint64_t seg, void *img, size_t len);
int zf_unseal_seg(const struct zf_seal *s, uint64_t seg, void *img, size_t len, char *why,
		  size_t why_len);

/* the segment's nonce from the first 64 bytes of its object (verified) */
int zf_unseal_seg_nonce(const struct zf_seal *s, uint64_t seg, const void *hdr,
			uint8_t nonce[ZF_SEG_NONCE_LEN], char *why, size_t why_len);
/*
 * The unit at offset off of a segment object whose first bytes are at u
 * (avail of them): its length in *ret_len (at least the 64 of a footer),
 * *ret_footer set when it is the footer. Reads only the unit's first 48
 * bytes and verifies nothing: zf_unseal_unit does. -EBADMSG if it is no unit.
 */
int zf_unseal_peek(const struct zf_seal *s, const uint8_t nonce[ZF_SEG_NONCE_LEN], uint64_t off,
		   const void *u, size_t avail, uint64_t *ret_len, int *ret_footer);
/* open the super-chunk unit u[0..len) at off of segment seg, in place */
int zf_unseal_unit(const struct zf_seal *s, uint64_t seg, const uint8_t nonce[ZF_SEG_NONCE_LEN],
		   uint64_t off, void *u, size_t len, char *why, size_t why_len);

#endif
