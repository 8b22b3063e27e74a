/* fuzz_mime.c - libFuzzer target: parse any bytes as a message, write
 * ENVELOPE, BODY, BODYSTRUCTURE and a set of sections, round-trip the
 * serialised form (the answers must not change), check that the header
 * fields a search extracts once answer as the header match does, and feed
 * the same bytes to the serial decoder. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/agbuf.h"
#include "protocol/bodystructure.h"
#include "protocol/envelope.h"
#include "protocol/mime.h"
#include "protocol/mime_serial.h"
#include "protocol/search_fields.h"
#include "protocol/search_match.h"
#include "protocol/section.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const sections[] = {
	"]", "HEADER]", "TEXT]", "1]", "1.MIME]", "2]", "2.MIME]", "1.1]", "1.2.3]", "2.HEADER]",
	"2.TEXT]", "1.1.HEADER]", "HEADER.FIELDS (FROM TO SUBJECT DATE)]",
	"HEADER.FIELDS.NOT (RECEIVED CONTENT-TYPE)]", "2.HEADER.FIELDS (SUBJECT)]", "TEXT]<0.100>",
	"1]<10.20>", "3.1.MIME]",
};

static void answers(struct agbuf *out, const struct mime_message *msg, const char *d, size_t n, int strict)
{
	envelope_write_message(out, msg);
	bodystructure_write(out, msg->root, 0);
	bodystructure_write(out, msg->root, 1);
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		char text[128];
		const char *fields[8];
		struct section_spec spec;
		struct section_result res;
		strcpy(text, sections[i]);
		if (section_spec_parse(text, &spec, fields, 8) != 0)
			abort();
		if (section_fetch(msg, d, n, &spec, &res) != 0) {
			if (strict)
				abort();
			continue;
		}
		section_write_item(out, &spec, &res);
		section_result_free(&res);
	}
}

/* The fields extracted from the header block (what the search cache
 * keeps) must answer every needle as search_match_header does, and give
 * the envelope's Date day. */
static void fields_agree(const struct mime_message *msg, const char *d, size_t size, int has_day, int64_t day)
{
	static const char *const names[] = { "subject", "from", "to", "x-a", "", "from" SEARCH_FIELD_ADDRESS,
					     "subject" SEARCH_FIELD_LWSP };
	static const char *const needles[] = { "", "a", "=?", "é", " " };
	size_t hlen = msg->root->body_offset <= size ? (size_t)msg->root->body_offset : size;
	struct search_fields *f = search_fields_extract(d, hlen, names, 7);
	if (f == NULL)
		abort();
	if (f->has_sent_day != has_day || (has_day && f->sent_day != day))
		abort();
	for (size_t i = 0; i < 7; i++) {
		const struct search_field *sf = search_fields_find(f, names[i], strlen(names[i]));
		for (size_t j = 0; j < 5; j++) {
			struct agbuf folded = AGBUF_INIT;
			search_fold(&folded, needles[j], strlen(needles[j]));
			int got = sf != NULL && search_field_contains(f, sf, folded.data ? folded.data : "", folded.len);
			if (got != search_match_header(msg, d, size, names[i], needles[j]))
				abort();
			agbuf_free(&folded);
		}
	}
	free(f);
}

/* The line ends as stored: never longer, changed exactly when
 * mime_save_line_ends_changes says so, and never ending in the CR that
 * ended the input. */
static void save_line_ends_sane(const char *d, size_t size)
{
	char *copy = malloc(size ? size : 1);
	if (copy == NULL)
		abort();
	size_t n = mime_save_line_ends(copy, d, size);
	if (n > size || (n != size || memcmp(copy, d, n) != 0) != mime_save_line_ends_changes(d, size))
		abort();
	if (size > 0 && d[size - 1] == '\r' && n == size)
		abort(); /* a final CR always goes */
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *d = (const char *)data;
	save_line_ends_sane(d, size);
	struct mime_message *msg = mime_parse(d, size);
	if (msg == NULL)
		return 0;
	struct agbuf a = AGBUF_INIT, b = AGBUF_INIT, enc = AGBUF_INIT;
	answers(&a, msg, d, size, 1);
	mime_serial_encode(msg, &enc);
	struct mime_message *dec = mime_serial_decode(enc.data, enc.len);
	if (dec == NULL)
		abort(); /* our own encoding must decode */
	answers(&b, dec, d, size, 1);
	if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
		abort(); /* the serialised form must answer the same */
	int64_t day;
	int has_day = search_sent_date(msg, d, size, &day) == 0;
	(void)search_match_text(msg, d, size, "the");
	fields_agree(msg, d, size, has_day, day);
	mime_free(dec);
	mime_free(msg);
	agbuf_free(&a);
	agbuf_free(&b);
	agbuf_free(&enc);
	/* and the raw bytes as a serialised form */
	struct mime_message *junk = mime_serial_decode(data, size);
	if (junk) {
		struct agbuf c = AGBUF_INIT;
		answers(&c, junk, d, size, 0);
		agbuf_free(&c);
		mime_free(junk);
	}
	return 0;
}
