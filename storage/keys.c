/*
 * storage/keys.c - the master key, wrapped by a passphrase and unwrapped in
 * the dev-dir (storage/keys.h; layouts in docs/FORMAT.md "Keys").
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <xxhash.h>

#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "storage/keys.h"
#include "storage/superblock.h"

#define KEYS_MAGIC "ZFKEYS01"		/*  0 */
#define KEYS_VERSION 1u			/*  8: le32, 12: le32 flags (0) */
					/* 16: fsid[16] */
#define KDF_ARGON2ID13 1u		/* 32: le32 kdf, 36: le32 0 */
					/* 40: le64 opslimit, 48: le64 memlimit */
#define KEYS_SALT_OFF 56u		/* 56: salt[16] */
#define KEYS_NONCE_OFF 72u		/* 72: nonce[24] */
#define KEYS_WRAPPED_OFF 96u		/* 96: master key sealed (32) | tag (16); AD: bytes 0..95 */
#define KEYS_CSUM_OFF 144u		/* 144: le64 XXH3-64 of bytes 0..143 */

/* a keys object asking for more is refused: it would stall or exhaust the machine */
#define KDF_OPS_MAX 16u
#define KDF_MEM_MAX (2ull << 30)

#define KEY_MAGIC "ZFMKEY01"		/*  0, 8: le32 version 1, 12: le32 0, 16: fsid */
#define KEY_MASTER_OFF 32u		/* 32: master[32] */
#define KEY_CSUM_OFF 64u		/* 64: le64 XXH3-64 of bytes 0..63 */

static int kek_derive(uint8_t kek[ZF_KEY_LEN], const char *pass, size_t pass_len,
		      const uint8_t *salt, uint64_t ops, uint64_t mem)
{
	if (sodium_init() < 0)
		return -EIO;
	if (crypto_pwhash(kek, ZF_KEY_LEN, pass, pass_len, salt, ops, (size_t)mem,
			  crypto_pwhash_ALG_ARGON2ID13) != 0) {
		zf_err("cannot derive a key from the passphrase: out of memory (Argon2id needs "
		       "%llu MiB)", (unsigned long long)(mem >> 20));
		return -ENOMEM;
	}
	return 0;
}

int zf_keys_wrap(const uint8_t fsid[16], const uint8_t master[ZF_KEY_LEN], const char *pass,
		 size_t pass_len, uint8_t *k)
{
	/* the one object anyone who reads the bucket can guess passphrases against */
	uint64_t ops = crypto_pwhash_OPSLIMIT_MODERATE, mem = crypto_pwhash_MEMLIMIT_MODERATE;
	uint8_t kek[ZF_KEY_LEN];
	int r;

	if (sodium_init() < 0)
		return -EIO;
	memset(k, 0, ZF_KEYS_SIZE);
	memcpy(k, KEYS_MAGIC, 8);
	zf_put32(k + 8, KEYS_VERSION);
	memcpy(k + 16, fsid, 16);
	zf_put32(k + 32, KDF_ARGON2ID13);
	zf_put64(k + 40, ops);
	zf_put64(k + 48, mem);
	randombytes_buf(k + KEYS_SALT_OFF, 16);
	randombytes_buf(k + KEYS_NONCE_OFF, 24);
	r = kek_derive(kek, pass, pass_len, k + KEYS_SALT_OFF, ops, mem);
	if (r < 0)
		return r;
	crypto_aead_xchacha20poly1305_ietf_encrypt(k + KEYS_WRAPPED_OFF, NULL, master, ZF_KEY_LEN,
						   k, KEYS_WRAPPED_OFF, NULL, k + KEYS_NONCE_OFF,
						   kek);
	sodium_memzero(kek, sizeof(kek));
	zf_put64(k + KEYS_CSUM_OFF, XXH3_64bits(k, KEYS_CSUM_OFF));
	return 0;
}

int zf_keys_create(const uint8_t fsid[16], const char *pass, size_t pass_len,
		   uint8_t master[ZF_KEY_LEN], uint8_t *keys_obj)
{
	if (sodium_init() < 0)
		return -EIO;
	randombytes_buf(master, ZF_KEY_LEN);
	return zf_keys_wrap(fsid, master, pass, pass_len, keys_obj);
}

int zf_keys_unwrap(const void *keys_obj, size_t len, const uint8_t *fsid, const char *pass,
		   size_t pass_len, uint8_t master[ZF_KEY_LEN], char *why, size_t why_len)
{
	const uint8_t *k = keys_obj;
	uint8_t kek[ZF_KEY_LEN];
	uint64_t ops, mem;
	int r;

	if (len != ZF_KEYS_SIZE || memcmp(k, KEYS_MAGIC, 8) ||
	    zf_get64(k + KEYS_CSUM_OFF) != XXH3_64bits(k, KEYS_CSUM_OFF)) {
		snprintf(why, why_len, "damaged (bad size, magic or checksum)");
		return -EBADMSG;
	}
	ops = zf_get64(k + 40);
	mem = zf_get64(k + 48);
	if (zf_get32(k + 8) != KEYS_VERSION || zf_get32(k + 12) || zf_get32(k + 32) != KDF_ARGON2ID13 ||
	    ops < crypto_pwhash_OPSLIMIT_MIN || ops > KDF_OPS_MAX ||
	    mem < crypto_pwhash_MEMLIMIT_MIN || mem > KDF_MEM_MAX) {
		snprintf(why, why_len, "unknown version, key derivation or parameters");
		return -EBADMSG;
	}
	if (fsid && memcmp(k + 16, fsid, 16)) {
		snprintf(why, why_len, "another filesystem's");
		return -EBADMSG;
	}
	r = kek_derive(kek, pass, pass_len, k + KEYS_SALT_OFF, ops, mem);
	if (r < 0) {
		snprintf(why, why_len, "cannot derive a key from the passphrase");
		return r;
	}
	r = crypto_aead_xchacha20poly1305_ietf_decrypt(master, NULL, NULL, k + KEYS_WRAPPED_OFF,
						       ZF_KEY_LEN + 16, k, KEYS_WRAPPED_OFF,
						       k + KEYS_NONCE_OFF, kek);
	sodium_memzero(kek, sizeof(kek));
	if (r != 0) {
		snprintf(why, why_len, "wrong passphrase");
		return -EKEYREJECTED;
	}
	return 0;
}

int zf_key_file_write(int dirfd, const uint8_t fsid[16], const uint8_t master[ZF_KEY_LEN])
{
	uint8_t b[ZF_KEY_FILE_SIZE] = { 0 };
	int r;

	memcpy(b, KEY_MAGIC, 8);
	zf_put32(b + 8, 1);
	memcpy(b + 16, fsid, 16);
	memcpy(b + KEY_MASTER_OFF, master, ZF_KEY_LEN);
	zf_put64(b + KEY_CSUM_OFF, XXH3_64bits(b, KEY_CSUM_OFF));
	r = zf_publish_file(dirfd, ZF_KEY_NAME, b, sizeof(b));
	sodium_memzero(b, sizeof(b));
	return r;
}

int zf_key_file_read(int dirfd, const uint8_t fsid[16], uint8_t master[ZF_KEY_LEN], char *why,
		     size_t why_len)
{
	uint8_t *b;
	size_t len;
	int r;

	r = zf_read_file(dirfd, ZF_KEY_NAME, (void **)&b, &len);
	if (r < 0) {
		snprintf(why, why_len, "%s", r == -ENOENT ? "missing" : strerror(-r));
		return r;
	}
	if (len != ZF_KEY_FILE_SIZE || memcmp(b, KEY_MAGIC, 8) || zf_get32(b + 8) != 1 ||
	    zf_get64(b + KEY_CSUM_OFF) != XXH3_64bits(b, KEY_CSUM_OFF)) {
		snprintf(why, why_len, "damaged (bad size, magic or checksum)");
		r = -EBADMSG;
	} else if (memcmp(b + 16, fsid, 16)) {
		snprintf(why, why_len, "another filesystem's");
		r = -EBADMSG;
	} else {
		memcpy(master, b + KEY_MASTER_OFF, ZF_KEY_LEN);
	}
	sodium_memzero(b, len);
	free(b);
	return r;
}

int zf_seal_load(int dirfd, struct zf_seal *ret, char *why, size_t why_len)
{
	uint8_t master[ZF_KEY_LEN];
	struct zf_sb sb;
	void *buf;
	size_t len;
	int r;

	r = zf_read_file(dirfd, "superblock", &buf, &len);
	if (r < 0) {
		snprintf(why, why_len, "cannot read the superblock: %s", strerror(-r));
		return r;
	}
	r = zf_sb_decode(buf, len, &sb, why, why_len);
	free(buf);
	if (r < 0)
		return r;
	if (!(sb.incompat & ZF_FEAT_ENCRYPT)) {
		zf_seal_init(ret, sb.incompat, sb.fsid, NULL);
		return 0;
	}
	r = zf_key_file_read(dirfd, sb.fsid, master, why, why_len);
	if (r == 0)
		zf_seal_init(ret, sb.incompat, sb.fsid, master);
	sodium_memzero(master, sizeof(master));
	return r;
}
