/*
 * garage_xml.c - the text of chosen children of an S3 XML answer's root
 * element: an error's <Code> and <Message>, <ActualObjectSize> of an
 * InvalidRange error, the <Code> of an <Error> sent after a 200; and the
 * parse of a whole answer with the handlers of a listing or a batch delete,
 * whose answers repeat elements (garage_s3.c).
 */
#include "drivers/garage/garage.h"

#include <string.h>

struct xml_fields {
	int depth;
	const char *root;
	int is_root;
	struct gr_xml_field *fields;
	size_t n;
	struct gr_xml_field *in; /* the field whose element is open */
};

static void XMLCALL fields_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	(void)attrs;
	struct xml_fields *x = ud;
	x->depth++;
	if (x->depth == 1)
		x->is_root = x->root == NULL || strcmp(name, x->root) == 0;
	x->in = NULL;
	for (size_t i = 0; x->is_root && x->depth == 2 && i < x->n; i++)
		if (strcmp(name, x->fields[i].name) == 0)
			x->in = &x->fields[i];
}

static void XMLCALL fields_end(void *ud, const XML_Char *name)
{
	(void)name;
	struct xml_fields *x = ud;
	x->depth--;
	x->in = NULL;
}

static void XMLCALL fields_text(void *ud, const XML_Char *s, int len)
{
	struct xml_fields *x = ud;
	if (x->in)
		gbuf_add(&x->in->text, s, (size_t)len);
}

void gr_xml_walk_start(struct gr_xml_walk *w)
{
	w->depth++;
	gbuf_free(&w->text);
	w->field = NULL;
}

void gr_xml_walk_end(struct gr_xml_walk *w)
{
	w->field = NULL;
	gbuf_free(&w->text);
	w->depth--;
}

void XMLCALL gr_xml_walk_text(void *ud, const XML_Char *s, int len)
{
	struct gr_xml_walk *w = ud;
	if (w->field)
		gbuf_add(&w->text, s, (size_t)len);
}

int gr_xml_parse(const char *data, size_t len, void *ud, XML_StartElementHandler start,
                 XML_EndElementHandler end, XML_CharacterDataHandler text, const char *op)
{
	XML_Parser p = XML_ParserCreate("UTF-8");
	if (!p)
		return agk_fail(AEROGRAM_EINTERNAL, "garage: out of memory");
	XML_SetUserData(p, ud);
	XML_SetElementHandler(p, start, end);
	XML_SetCharacterDataHandler(p, text);
	int rc = 0;
	if (XML_Parse(p, data ? data : "", (int)len, 1) == XML_STATUS_ERROR)
		rc = agk_fail(AEROGRAM_EINTERNAL, "garage: unreadable XML from %s: %s", op,
		              XML_ErrorString(XML_GetErrorCode(p)));
	XML_ParserFree(p);
	return rc;
}

int gr_xml_fields(const char *data, size_t len, const char *root, int *is_root,
                  struct gr_xml_field *fields, size_t n)
{
	struct xml_fields x = { .root = root, .fields = fields, .n = n };
	int rc = gr_xml_parse(data, len, &x, fields_start, fields_end, fields_text, "an answer");
	if (is_root)
		*is_root = x.is_root;
	return rc == 0 ? 0 : -1;
}
