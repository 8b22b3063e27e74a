/* test_loader.c - ag_driver_load refuses every kind of bad driver with one
 * line that names the file (and, for versions, both versions), and loads a
 * good one.
 *
 * usage: test_loader DIR   (the directory holding the test drivers) */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#include "sdk/loader/ag_loader.h"
#include "tests/lib/cu_main.h"

static const char *dir;

/* Loads DIR/aerogram_<variant>.so; returns its status and fills err. */
static int load(const char *variant, const struct aerogram_config_entry *cfg, size_t n, char *err,
                size_t errlen, char *path, size_t pathlen)
{
	snprintf(path, pathlen, "%s/aerogram_%s.so", dir, variant);
	struct ag_driver *drv = NULL;
	err[0] = '\0';
	int rc = ag_driver_load(path, NULL, cfg, n, &drv, err, errlen);
	if (rc == 0) {
		CU_ASSERT_PTR_NOT_NULL(drv);
		ag_driver_unload(drv);
	} else {
		CU_ASSERT_PTR_NULL(drv);
	}
	return rc;
}

#define EXPECT_REFUSED(variant, ...)                                                     \
	do {                                                                             \
		char err[1024], path[512];                                               \
		int rc = load(variant, NULL, 0, err, sizeof(err), path, sizeof(path));   \
		CU_ASSERT_NOT_EQUAL(rc, 0);                                              \
		CU_ASSERT_PTR_NOT_NULL(strstr(err, path));                               \
		CU_ASSERT_PTR_NULL(strchr(err, '\n'));                                   \
		const char *needles[] = { __VA_ARGS__ };                                 \
		for (size_t i = 0; i < sizeof(needles) / sizeof(needles[0]); i++)        \
			CU_ASSERT_PTR_NOT_NULL(strstr(err, needles[i]));                 \
		printf("\n    %s: %s\n    ", variant, err);                                     \
	} while (0)

static void test_major(void)
{
	char found[16], ours[16];
	snprintf(found, sizeof(found), "version %d", AEROGRAM_ABI_MAJOR + 1);
	snprintf(ours, sizeof(ours), "%d.%d", AEROGRAM_ABI_MAJOR, AEROGRAM_ABI_MINOR);
	EXPECT_REFUSED("major", found, ours);
}

static void test_minor(void)
{
	char found[16], ours[16];
	snprintf(found, sizeof(found), "%d.%d", AEROGRAM_ABI_MAJOR, AEROGRAM_ABI_MINOR + 1);
	snprintf(ours, sizeof(ours), "%d.%d", AEROGRAM_ABI_MAJOR, AEROGRAM_ABI_MINOR);
	EXPECT_REFUSED("minor", found, ours);
}

static void test_small(void)
{
	EXPECT_REFUSED("small", "bytes");
}

static void test_noentry(void)
{
	EXPECT_REFUSED("noentry", "aerogram_driver_entry");
}

static void test_undefined(void)
{
	EXPECT_REFUSED("undefined", "aerogram_test_symbol_defined_nowhere");
}

static void test_openfail(void)
{
	EXPECT_REFUSED("openfail", "the test store refuses to open");
}

static void test_missingfn(void)
{
	EXPECT_REFUSED("missingfn", "blob_copy");
}

static void test_missing_file(void)
{
	EXPECT_REFUSED("does-not-exist", "not found");
}

static void test_good(void)
{
	char err[1024], path[512];
	CU_ASSERT_EQUAL(load("good", NULL, 0, err, sizeof(err), path, sizeof(path)), 0);
	struct aerogram_config_entry known = { "color", "blue" };
	CU_ASSERT_EQUAL(load("good", &known, 1, err, sizeof(err), path, sizeof(path)), 0);
	/* a key the driver does not declare is refused before open */
	struct aerogram_config_entry unknown = { "colour", "blue" };
	CU_ASSERT_NOT_EQUAL(load("good", &unknown, 1, err, sizeof(err), path, sizeof(path)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "colour"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err, path));
	/* a name is looked up in the driver directory */
	struct ag_driver *drv = NULL;
	CU_ASSERT_EQUAL(ag_driver_load("good", dir, NULL, 0, &drv, err, sizeof(err)), 0);
	if (drv) {
		CU_ASSERT_STRING_EQUAL(ag_driver_store(drv)->driver->name, "testdrv");
		ag_driver_unload(drv);
	}
}

/* Loads a variant that must load, for a look at the descriptor the host uses. */
static struct ag_driver *load_kept(const char *variant)
{
	char path[512], err[1024];
	snprintf(path, sizeof(path), "%s/aerogram_%s.so", dir, variant);
	struct ag_driver *drv = NULL;
	int rc = ag_driver_load(path, NULL, NULL, 0, &drv, err, sizeof(err));
	CU_ASSERT_EQUAL(rc, 0);
	if (rc != 0)
		printf("\n    %s: %s\n    ", variant, err);
	return drv;
}

/* A driver with the capability: the host sees its call. */
static void test_conditional(void)
{
	struct ag_driver *drv = load_kept("cond");
	if (drv == NULL)
		return;
	const struct aerogram_driver *d = ag_driver_store(drv)->driver;
	CU_ASSERT_EQUAL(d->abi_minor, AEROGRAM_ABI_MINOR);
	CU_ASSERT(d->struct_size >= AEROGRAM_DRIVER_SIZE_2_0);
	CU_ASSERT(d->capabilities & AEROGRAM_CAP_CONDITIONAL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d->row_insert_if);
	char tok[AEROGRAM_TOKEN_MAX];
	CU_ASSERT_EQUAL(d->row_insert_if(ag_driver_store(drv)->store, "p", "s", NULL, NULL, 0, tok,
	                                 sizeof(tok)),
	                AEROGRAM_ENOTSUP);
	ag_driver_unload(drv);
	/* a driver without it is complete too */
	drv = load_kept("good");
	if (drv) {
		CU_ASSERT_PTR_NULL(ag_driver_store(drv)->driver->row_insert_if);
		ag_driver_unload(drv);
	}
}

/* A capability without its function is refused. */
static void test_capability_without_function(void)
{
	EXPECT_REFUSED("condnofn", "AEROGRAM_CAP_CONDITIONAL", "row_insert_if");
}

static const struct agt_test tests[] = {
	{ "ABI major + 1", test_major },
	{ "ABI minor + 1", test_minor },
	{ "descriptor too small", test_small },
	{ "no entry symbol", test_noentry },
	{ "undefined symbol", test_undefined },
	{ "open fails", test_openfail },
	{ "missing function", test_missingfn },
	{ "missing file", test_missing_file },
	{ "good driver", test_good },
	{ "driver with AEROGRAM_CAP_CONDITIONAL", test_conditional },
	{ "capability without its function", test_capability_without_function },
	AGT_END,
};

int main(int argc, char **argv)
{
	agt_init(&argc, &argv);
	dir = agt_arg(argc, argv, "DIR");
	agt_suite("loader", NULL, NULL, tests, NULL);
	return agt_run();
}
