/* bench_mime.c - prints how fast messages parse and how large their
 * serialised form is: bench_mime FILE... (not part of make check). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "protocol/agbuf.h"
#include "protocol/bodystructure.h"
#include "protocol/envelope.h"
#include "protocol/mime.h"
#include "protocol/mime_serial.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	size_t total = 0, encoded = 0;
	double spent = 0;
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (f == NULL) {
			perror(argv[i]);
			return 1;
		}
		struct agbuf data = AGBUF_INIT;
		char chunk[65536];
		size_t n;
		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			agbuf_append(&data, chunk, n);
		fclose(f);
		int rounds = data.len > 1000000 ? 3 : 200;
		double t0 = now();
		for (int r = 0; r < rounds; r++) {
			struct mime_message *msg = mime_parse(data.data, data.len);
			struct agbuf out = AGBUF_INIT;
			envelope_write_message(&out, msg);
			bodystructure_write(&out, msg->root, 1);
			if (r == 0) {
				struct agbuf enc = AGBUF_INIT;
				mime_serial_encode(msg, &enc);
				encoded += enc.len;
				agbuf_free(&enc);
			}
			agbuf_free(&out);
			mime_free(msg);
		}
		spent += now() - t0;
		total += data.len * (size_t)rounds;
		agbuf_free(&data);
	}
	printf("parsed %.1f MB in %.3f s: %.1f MB/s (parse + ENVELOPE + BODYSTRUCTURE)\n",
	       (double)total / 1e6, spent, spent > 0 ? (double)total / 1e6 / spent : 0.0);
	printf("serialised form: %zu bytes for %d messages (%.0f bytes per message)\n", encoded, argc - 1,
	       argc > 1 ? (double)encoded / (argc - 1) : 0.0);
	return 0;
}
