/*
 * storage/keys.h - an encrypted filesystem's master key: wrapped by a
 * passphrase for the bucket, unwrapped in the dev-dir
 *
 * `zerofs mkfs --encrypt` makes a random master key (32 bytes). It leaves
 * the machine only wrapped: the `keys` object (and <dev-dir>/keys) holds it
 * sealed with XChaCha20-Poly1305 under a key Argon2id derives from the
 * passphrase and a random salt. The dev-dir keeps it unwrapped too, in
 * <dev-dir>/key (mode 0600), beside the data it already holds in the clear,
 * so that mounts, fsck and gc need no passphrase; a restore on another
 * machine needs the passphrase alone. Changing the passphrase rewraps the
 * same master key (no data is re-encrypted). Layouts: docs/FORMAT.md "Keys".
 */
#ifndef ZF_STORAGE_KEYS_H
#define ZF_STORAGE_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "storage/seal.h"

#define ZF_KEYS_NAME "keys"	/* the wrapped key, in the dev-dir and the bucket */
#define ZF_KEY_NAME "key"	/* the unwrapped key, in the dev-dir only */
#define ZF_KEYS_NEW_NAME "keys.new"	/* zerofs passwd's new wrapping, until the bucket has it */
#define ZF_KEYS_SIZE 152u
#define ZF_KEY_FILE_SIZE 72u

/* a new random master key and its wrapping by pass (a keys object of ZF_KEYS_SIZE) */
int zf_keys_create(const uint8_t fsid[16], const char *pass, size_t pass_len,
		   uint8_t master[ZF_KEY_LEN], uint8_t *keys_obj);

/*
 * The master key from a keys object and its passphrase. -EKEYREJECTED for a
 * wrong passphrase, -EBADMSG for a damaged object (or another filesystem's,
 * when fsid is not NULL), with the reason in why.
 */
int zf_keys_unwrap(const void *keys_obj, size_t len, const uint8_t *fsid, const char *pass,
		   size_t pass_len, uint8_t master[ZF_KEY_LEN], char *why, size_t why_len);

/* the same master key wrapped by another passphrase (new salt) into keys_obj */
int zf_keys_wrap(const uint8_t fsid[16], const uint8_t master[ZF_KEY_LEN], const char *pass,
		 size_t pass_len, uint8_t *keys_obj);

/* <dev-dir>/key: write (published atomically, mode 0600) and read (verified) */
int zf_key_file_write(int dirfd, const uint8_t fsid[16], const uint8_t master[ZF_KEY_LEN]);
int zf_key_file_read(int dirfd, const uint8_t fsid[16], uint8_t master[ZF_KEY_LEN], char *why,
		     size_t why_len);

/*
 * How the objects of the filesystem in the dev-dir dirfd travel: its
 * superblock's features and, when encrypted, its key file. 0, or -errno
 * with the reason in why.
 */
int zf_seal_load(int dirfd, struct zf_seal *ret, char *why, size_t why_len);

#endif
