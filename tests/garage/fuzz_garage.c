/* fuzz_garage.c - libFuzzer target: the garage driver against a hostile or
 * broken Garage node. The driver is built with GR_FUZZ_TRANSPORT: no
 * network, every request it makes gets the next answer cut from the input.
 *
 * Two targets from this file: fuzz_garage_k2v (K2V calls, JSON answers)
 * and, with FUZZ_S3, fuzz_garage_s3 (S3 calls, XML answers and headers).
 * Input: one byte choosing the operation (its high bit a variant: with a
 * token, a marker, a continuation), then answers separated by a line
 * "~~~" (4 bytes with its newline). An answer is a first line with the HTTP
 * status in decimal, header lines, an empty line, then the body:
 *
 *     \x01200
 *     content-type: application/json
 *
 *     [{"partitionKey":"p","items":[...],"more":false,"nextStart":null}]
 *     ~~~
 *     404
 *     ...
 *
 * The operations cover every answer the driver parses: K2V JSON (ReadBatch
 * items, values, tokens, more/nextStart pagination, DeleteBatch counts,
 * PollItem answers, error bodies) and S3
 * (GetObject headers, metadata and Content-Range, ListObjectsV2 and
 * DeleteObjects XML, CopyObject results, XML error bodies). Whatever the
 * answers, the driver must return an AEROGRAM_* code and never crash, leak
 * (LeakSanitizer runs at exit) or hang. Seeds: tests/garage/fuzz-corpus/. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <aerogram/driver.h>

const struct aerogram_driver *aerogram_driver_entry(void);
int gr_fuzz_next_answer(long *status, const char **headers, size_t *hlen, const char **body,
                        size_t *blen);

static const uint8_t *in_p, *in_end;
static const struct aerogram_driver *drv;
static struct aerogram_store *store;

int gr_fuzz_next_answer(long *status, const char **headers, size_t *hlen, const char **body,
                        size_t *blen)
{
	if (in_p >= in_end)
		return 0;
	const char *p = (const char *)in_p, *end = (const char *)in_end;
	const char *stop = memmem(p, (size_t)(end - p), "\n~~~\n", 5);
	const char *aend = stop ? stop + 1 : end;
	in_p = (const uint8_t *)(stop ? stop + 5 : end);
	long st = 0;
	while (p < aend && *p >= '0' && *p <= '9' && st < 1000)
		st = st * 10 + (*p++ - '0');
	*status = st;
	const char *nl = memchr(p, '\n', (size_t)(aend - p));
	p = nl ? nl + 1 : aend;
	const char *hend = p;
	/* header lines up to an empty line */
	while (hend < aend && *hend != '\n' && !(*hend == '\r' && hend + 1 < aend && hend[1] == '\n')) {
		const char *e = memchr(hend, '\n', (size_t)(aend - hend));
		hend = e ? e + 1 : aend;
	}
	*headers = p;
	*hlen = (size_t)(hend - p);
	const char *b = hend;
	if (b < aend && *b == '\r')
		b++;
	if (b < aend && *b == '\n')
		b++;
	*body = b;
	*blen = (size_t)(aend - b);
	return 1;
}

static const char *cfg_get(void *ctx, const char *key)
{
	(void)ctx;
	(void)key;
	return NULL;
}

static void cfg_log(void *ctx, enum aerogram_log_level level, const char *message)
{
	(void)ctx;
	(void)level;
	(void)message;
}

static const struct aerogram_host host = { sizeof(struct aerogram_host), NULL, cfg_log, cfg_get };

static void open_store(void)
{
	static const struct aerogram_config_entry config[] = {
		{ "k2v_endpoint", "http://127.0.0.1:9" },
		{ "s3_endpoint", "http://127.0.0.1:9" },
		{ "bucket", "fuzz" },
		{ "access_key_id", "GK0123456789abcdef01234567" },
		{ "secret_access_key", "0000000000000000000000000000000000000000000000000000000000000000" },
	};
	drv = aerogram_driver_entry();
	char err[256];
	if (drv->open(&host, config, sizeof(config) / sizeof(config[0]), &store, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_garage: open failed: %s\n", err);
		abort();
	}
}

/* A watch callback that checks what it is given is readable. */
static void on_watch(void *arg, int status, const struct aerogram_row *row, const char *message)
{
	size_t *sum = arg;
	*sum += (size_t)(status < 0 ? -status : status);
	if (row) {
		*sum += strlen(row->sk) + strlen(row->token);
		for (size_t k = 0; k < row->n_values; k++)
			*sum += row->values[k].len;
	}
	if (message)
		*sum += strlen(message);
}

/* Touches every byte of a row result, so the sanitizers see bad pointers. */
static size_t walk_rows(const struct aerogram_row_result *res)
{
	size_t sum = 0;
	for (size_t i = 0; i < res->n_pages; i++) {
		const struct aerogram_row_page *pg = &res->pages[i];
		for (size_t r = 0; r < pg->n_rows; r++) {
			const struct aerogram_row *row = &pg->rows[r];
			sum += strlen(row->sk) + strlen(row->token);
			for (size_t k = 0; k < row->n_values; k++)
				for (size_t b = 0; b < row->values[k].len; b++)
					sum += row->values[k].data[b];
		}
		if (pg->more && pg->next_start)
			sum += strlen(pg->next_start);
	}
	return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!store)
		open_store();
	if (size < 1)
		return 0;
	in_p = data + 1;
	in_end = data + size;
	volatile size_t sum = 0;
#ifdef FUZZ_S3
	static const int ops[] = { 4, 5, 6, 7, 8 }; /* S3: XML and headers */
#else
	static const int ops[] = { 0, 1, 2, 3, 9, 10 }; /* K2V: JSON */
#endif
	switch (ops[(data[0] & 0x7f) % (sizeof(ops) / sizeof(ops[0]))]) {
	case 0: { /* single items and a range: ReadBatch */
		struct aerogram_row_query q[3] = {
			{ .pk = "p", .sk = "watch" },
			{ .pk = "p", .start = "a", .end = "z", .limit = 3 },
			{ .pk = "p", .prefix = "t/", .flags = AEROGRAM_QUERY_TOMBSTONES },
		};
		struct aerogram_row_result *res = NULL;
		if (drv->row_read(store, q, 3, &res) == 0) {
			sum += walk_rows(res);
			drv->row_result_free(store, res);
		}
		break;
	}
	case 1: { /* unlimited reads follow nextStart; conflicts only; reverse */
		struct aerogram_row_query q[2] = {
			{ .pk = "p" },
			{ .pk = "q", .limit = 2, .flags = AEROGRAM_QUERY_REVERSE | AEROGRAM_QUERY_CONFLICTS_ONLY },
		};
		struct aerogram_row_result *res = NULL;
		if (drv->row_read(store, q, 2, &res) == 0) {
			sum += walk_rows(res);
			drv->row_result_free(store, res);
		}
		break;
	}
	case 2: { /* DeleteBatch */
		struct aerogram_row_query q[2] = { { .pk = "p", .prefix = "m/" }, { .pk = "p", .sk = "x" } };
		uint64_t deleted = 0;
		drv->row_delete(store, q, 2, &deleted);
		sum += (size_t)deleted;
		break;
	}
	case 3: { /* InsertBatch: only an error body to read */
		struct aerogram_row_write w[2] = {
			{ .pk = "p", .sk = "a", .value = (const uint8_t *)"v", .len = 1 },
			{ .pk = "p", .sk = "b", .tombstone = 1 },
		};
		drv->row_insert(store, w, 2);
		break;
	}
	case 4: { /* GetObject, with a byte range and a whole object */
		struct aerogram_blob_request req[2] = { { .key = "k1", .offset = 5, .length = 10 }, { .key = "k2" } };
		struct aerogram_blob_result *res = NULL;
		if (drv->blob_get(store, req, 2, &res) == 0) {
			for (size_t i = 0; i < res->n_blobs; i++) {
				const struct aerogram_blob *b = &res->blobs[i];
				for (size_t k = 0; k < b->len; k++)
					sum += b->data[k];
				for (size_t m = 0; m < b->n_meta; m++)
					sum += strlen(b->meta[m].name) + strlen(b->meta[m].value);
			}
			drv->blob_result_free(store, res);
		}
		break;
	}
	case 5: { /* ListObjectsV2 */
		struct aerogram_blob_list *l = NULL;
		if (drv->blob_list(store, "pre/", (data[0] & 0x80) ? "tok" : NULL, 5, &l) == 0) {
			for (size_t i = 0; i < l->n_keys; i++)
				sum += strlen(l->keys[i]) + (size_t)l->sizes[i];
			if (l->more && l->next_token)
				sum += strlen(l->next_token);
			drv->blob_list_free(store, l);
		}
		break;
	}
	case 6: { /* DeleteObjects */
		const char *keys[3] = { "a", "b&<c>", "d" };
		drv->blob_delete(store, keys, 3);
		break;
	}
	case 7: /* CopyObject */
		drv->blob_copy(store, "src", "dst");
		break;
	case 8: { /* PutObject: an error body at most */
		struct aerogram_meta meta[1] = { { "flags", "seen" } };
		drv->blob_put(store, "k", (const uint8_t *)"body", 4, meta, 1);
		break;
	}
	case 9:
	case 10: { /* PollItem (ReadItem first without a token); 10 is 9 again */
		struct aerogram_watch *w = NULL;
		size_t s = 0;
		const char *token = (data[0] & 0x80) ? "AAAAAAAAAAAAAAAAAAAAAA" : NULL;
		if (drv->row_watch(store, "p", "watch", token, 1000, on_watch, &s, &w) == 0)
			drv->row_watch_release(store, w);
		sum += s;
		break;
	}
	}
	(void)sum;
	return 0;
}
