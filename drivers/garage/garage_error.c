/*
 * garage_error.c - what a failed request of the Garage driver means: the
 * ABI code for an HTTP status or a transport failure, and a message naming
 * the operation with Garage's own code and text, read from a K2V JSON or an
 * S3 XML error body (garage_xml.c).
 */
#include "drivers/garage/garage.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* ---- errors ---- */

/* Garage's error code and message from a K2V JSON or S3 XML error body. */
static void parse_error_body(const struct gr_request *req, char **code, char **message)
{
	*code = *message = NULL;
	const char *body = req->response.data;
	size_t len = req->response.len;
	while (len && isspace((unsigned char)*body)) {
		body++;
		len--;
	}
	if (!len)
		return;
	if (*body == '{') {
		json_t *j = json_loadb(body, len, 0, NULL);
		if (j) {
			const char *c = json_string_value(json_object_get(j, "code"));
			const char *m = json_string_value(json_object_get(j, "message"));
			*code = c ? strdup(c) : NULL;
			*message = m ? strdup(m) : NULL;
			json_decref(j);
		}
	} else if (*body == '<') {
		struct gr_xml_field f[2] = { { "Code", {0} }, { "Message", {0} } };
		if (gr_xml_fields(body, len, NULL, NULL, f, 2) == 0) {
			*code = gbuf_take(&f[0].text);
			*message = gbuf_take(&f[1].text);
		}
		gbuf_free(&f[0].text);
		gbuf_free(&f[1].text);
	}
}

static int status_code(long status)
{
	if (status >= 200 && status < 300)
		return AEROGRAM_OK;
	switch (status) {
	case 404: return AEROGRAM_ENOTFOUND;
	case 403: return AEROGRAM_EPERM;
	case 400: return AEROGRAM_EINVAL;
	case 409:
	case 412: return AEROGRAM_ECONFLICT;
	case 413: return AEROGRAM_ETOOBIG;
	default: break;
	}
	if (status >= 500)
		return AEROGRAM_EUNAVAILABLE;
	return AEROGRAM_EINTERNAL;
}

int gr_request_error(const struct gr_request *req, char **msg)
{
	if (msg)
		*msg = NULL;
	if (req->curl_code != CURLE_OK) {
		int code = req->curl_code == CURLE_OUT_OF_MEMORY ? AEROGRAM_EINTERNAL
		                                                  : AEROGRAM_EUNAVAILABLE;
		if (msg) {
			struct gbuf b = {0};
			gbuf_addf(&b, "garage: %s on %s %s (%s; %d attempt%s)", req->curl_error[0]
			                                                            ? req->curl_error
			                                                            : curl_easy_strerror(req->curl_code),
			          req->op, req->path, curl_easy_strerror(req->curl_code), req->attempts,
			          req->attempts == 1 ? "" : "s");
			*msg = gbuf_take(&b);
		}
		return code;
	}
	int code = status_code(req->status);
	if (code == AEROGRAM_OK || !msg)
		return code;
	char *gcode, *gmsg;
	parse_error_body(req, &gcode, &gmsg);
	struct gbuf b = {0};
	gbuf_addf(&b, "garage: %ld %s on %s %s", req->status, gcode && *gcode ? gcode : "(no code)",
	          req->op, req->path);
	if (gmsg && *gmsg)
		gbuf_addf(&b, " (%s)", gmsg);
	if (req->attempts > 1)
		gbuf_addf(&b, " after %d attempts", req->attempts);
	free(gcode);
	free(gmsg);
	*msg = gbuf_take(&b);
	return code;
}

int gr_request_status(const struct gr_request *req)
{
	char *msg;
	int code = gr_request_error(req, &msg);
	if (code != AEROGRAM_OK)
		agk_fail(code, "%s", msg ? msg : "garage: out of memory");
	free(msg);
	return code;
}
