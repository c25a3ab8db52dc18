/* test_error.c -- the error helpers format and truncate as promised. */
#include <criterion/criterion.h>
#include <string.h>
#include "error.h"

Test(error, set_formats_and_returns_code)
{
    pcf_error e;
    pcf_rc rc = pcf_error_set(&e, PCF_ERR_PARSE, "%s:%d: %s", "f.csv", 7, "bad number");
    cr_assert_eq(rc, PCF_ERR_PARSE);
    cr_assert_eq(e.code, PCF_ERR_PARSE);
    cr_assert_str_eq(e.msg, "f.csv:7: bad number");
}

Test(error, long_messages_truncate)
{
    pcf_error e;
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    pcf_error_set(&e, PCF_ERR_IO, "%s", big);
    cr_assert_eq(strlen(e.msg), PCF_ERROR_MSG_MAX - 1);
    cr_assert_eq(pcf_error_set(NULL, PCF_ERR_IO, "x"), PCF_ERR_IO);
}

/* Regression: pcf_error_clear left the SQLSTATE of an earlier database
 * error, so a later, different failure read through the same pcf_error
 * could be classified (live.c: quarantine for 22/23) by a stale state. */
Test(error, clear_forgets_the_sqlstate)
{
    pcf_error e;
    pcf_error_set(&e, PCF_ERR_DB, "insert failed");
    memcpy(e.sqlstate, "23503", 6);
    pcf_error_clear(&e);
    cr_assert_eq(e.code, PCF_OK);
    cr_assert_str_eq(e.msg, "");
    cr_assert_str_eq(e.sqlstate, "");
}
