/* check_watch.c - conformance tests of row watches and range watches. */
#include "sdk/conformance/check_util.h"

int ck_register_watches(void)
{
	return 0;
}
