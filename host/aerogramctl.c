/* aerogramctl.c - administration commands: hash-password, version. */
#include <argon2.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/* Argon2id parameters for stored passwords: 64 MiB, 3 passes, 1 lane,
 * the second recommendation of RFC 9106 for memory-constrained servers. */
#define HASH_T_COST 3
#define HASH_M_COST (64 * 1024)
#define HASH_PARALLELISM 1
#define HASH_SALT_LEN 16
#define HASH_LEN 32

static int hash_password(void)
{
	char password[1024];
	if (fgets(password, sizeof(password), stdin) == NULL) {
		fprintf(stderr, "aerogramctl: no password on standard input\n");
		return 1;
	}
	size_t len = strcspn(password, "\r\n");
	password[len] = '\0';
	if (len == 0) {
		fprintf(stderr, "aerogramctl: the password is empty\n");
		return 1;
	}
	unsigned char salt[HASH_SALT_LEN];
	if (RAND_bytes(salt, sizeof(salt)) != 1) {
		fprintf(stderr, "aerogramctl: no randomness available\n");
		return 1;
	}
	size_t enclen = argon2_encodedlen(HASH_T_COST, HASH_M_COST, HASH_PARALLELISM, HASH_SALT_LEN,
	                                  HASH_LEN, Argon2_id);
	char *encoded = malloc(enclen);
	if (encoded == NULL)
		return 1;
	int rc = argon2id_hash_encoded(HASH_T_COST, HASH_M_COST, HASH_PARALLELISM, password, len,
	                               salt, sizeof(salt), HASH_LEN, encoded, enclen);
	memset(password, 0, sizeof(password));
	if (rc != ARGON2_OK) {
		fprintf(stderr, "aerogramctl: argon2: %s\n", argon2_error_message(rc));
		free(encoded);
		return 1;
	}
	printf("%s\n", encoded);
	free(encoded);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "hash-password") == 0)
		return hash_password();
	if (argc == 2 && strcmp(argv[1], "version") == 0) {
		printf("aerogram %s\n", AEROGRAM_VERSION);
		return 0;
	}
	fprintf(stderr, "usage: aerogramctl hash-password   (reads a password on stdin, prints its Argon2id PHC string)\n"
	                "       aerogramctl version\n");
	return 2;
}
