/* capability.c - every capability the server may announce, and when.
 *
 * One table, so that a capability is announced exactly when its commands
 * work: `implemented` is flipped when the code lands, never before. The
 * pre-login list is short, as Dovecot's is: a client learns the rest in the
 * LOGIN response code. */
#include "host/capability.h"

#include <stddef.h>

enum when {
	PRE = 1,            /* before authentication */
	POST = 2,           /* after authentication */
	BOTH = PRE | POST,
};

enum condition {
	ALWAYS,
	IF_STARTTLS,        /* TLS configured and not active yet */
	IF_PLAINTEXT,       /* plaintext authentication allowed here */
	IF_NO_PLAINTEXT,    /* ... refused here */
};

struct capability {
	const char *name;
	enum when when;
	enum condition condition;
	int implemented;
};

static const struct capability capabilities[] = {
	{ "IMAP4rev1", BOTH, ALWAYS, 1 },
	{ "LITERAL+", BOTH, ALWAYS, 1 },      /* RFC 7888 */
	{ "SASL-IR", BOTH, ALWAYS, 1 },       /* RFC 4959 */
	{ "ENABLE", BOTH, ALWAYS, 1 },        /* RFC 5161 */
	{ "IDLE", BOTH, ALWAYS, 1 },          /* RFC 2177 */
	{ "UIDPLUS", POST, ALWAYS, 1 },       /* RFC 4315 */
	{ "MULTIAPPEND", POST, ALWAYS, 1 },   /* RFC 3502 */
	{ "MOVE", POST, ALWAYS, 1 },          /* RFC 6851 */
	{ "UNSELECT", POST, ALWAYS, 1 },      /* RFC 3691 */
	{ "NAMESPACE", POST, ALWAYS, 1 },     /* RFC 2342 */
	{ "ID", BOTH, ALWAYS, 1 },            /* RFC 2971 */
	{ "CHILDREN", POST, ALWAYS, 1 },      /* RFC 3348 */
	{ "SPECIAL-USE", POST, ALWAYS, 1 },   /* RFC 6154 */
	{ "QUOTA", POST, ALWAYS, 1 },         /* RFC 9208 (no QUOTASET: limits are the administrator's) */
	{ "QUOTA=RES-STORAGE", POST, ALWAYS, 1 },
	{ "QUOTA=RES-MESSAGE", POST, ALWAYS, 1 },
	{ "STATUS=SIZE", POST, ALWAYS, 1 },   /* RFC 8438 */
	{ "ESEARCH", POST, ALWAYS, 1 },       /* RFC 4731 */
	{ "SEARCHRES", POST, ALWAYS, 1 },     /* RFC 5182 */
	{ "WITHIN", POST, ALWAYS, 1 },        /* RFC 5032 */
	{ "LIST-EXTENDED", POST, ALWAYS, 1 }, /* RFC 5258 */
	{ "LIST-STATUS", POST, ALWAYS, 1 },   /* RFC 5819 */
	{ "CREATE-SPECIAL-USE", POST, ALWAYS, 1 }, /* RFC 6154 */
	/* RFC 5256, collation i;ascii-casemap (not i;unicode-casemap of
	 * RFC 5255: non-ASCII letters compare by their UTF-8 bytes) */
	{ "SORT", POST, ALWAYS, 1 },
	{ "SORT=DISPLAY", POST, ALWAYS, 1 },  /* RFC 5957 */
	{ "THREAD=ORDEREDSUBJECT", POST, ALWAYS, 1 }, /* RFC 5256 */
	{ "THREAD=REFERENCES", POST, ALWAYS, 1 },     /* RFC 5256 */
	{ "ESORT", POST, ALWAYS, 1 },         /* RFC 5267: SORT RETURN (MIN MAX ALL COUNT SAVE) */
	{ "CONDSTORE", POST, ALWAYS, 1 },     /* RFC 7162 */
	{ "QRESYNC", POST, ALWAYS, 1 },       /* RFC 7162 */
	{ "BINARY", POST, ALWAYS, 1 },        /* RFC 3516 (literal8 only in APPEND) */
	{ "COMPRESS=DEFLATE", POST, ALWAYS, 1 }, /* RFC 4978 */
	{ "CATENATE", POST, ALWAYS, 1 },      /* RFC 4469 (relative URLs to the user's own mailboxes) */
	/* RFC 5267: RETURN (PARTIAL x:y), (UPDATE) with ADDTO / REMOVEFROM,
	 * CANCELUPDATE, NOUPDATE past 10 contexts (host/context.h) */
	{ "CONTEXT=SEARCH", POST, ALWAYS, 1 },
	{ "CONTEXT=SORT", POST, ALWAYS, 1 },
	{ "STARTTLS", PRE, IF_STARTTLS, 1 },
	{ "AUTH=PLAIN", PRE, IF_PLAINTEXT, 1 },    /* RFC 4616 */
	{ "LOGINDISABLED", PRE, IF_NO_PLAINTEXT, 1 },
};

void ag_capability_append(struct agbuf *out, const struct ag_capability_context *ctx)
{
	int first = 1;
	for (size_t i = 0; i < sizeof(capabilities) / sizeof(capabilities[0]); i++) {
		const struct capability *c = &capabilities[i];
		if (!c->implemented)
			continue;
		if (!(c->when & (ctx->authenticated ? POST : PRE)))
			continue;
		switch (c->condition) {
		case ALWAYS: break;
		case IF_STARTTLS: if (!ctx->starttls) continue; break;
		case IF_PLAINTEXT: if (!ctx->plaintext_ok) continue; break;
		case IF_NO_PLAINTEXT: if (ctx->plaintext_ok) continue; break;
		}
		if (!first)
			agbuf_putc(out, ' ');
		agbuf_puts(out, c->name);
		first = 0;
	}
}
