/* Form bodies as Grafana posts them: pairs in order, %XX and '+' decoded,
 * a repeated name kept each time, a decoded NUL reported by its length,
 * broken escapes left as they are. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/lib/formdata.h"

struct seen {
    char text[512];
};

static void add(void *arg, const char *name, const char *value, size_t len)
{
    struct seen *s = arg;
    size_t n = strlen(s->text);
    snprintf(s->text + n, sizeof(s->text) - n, "[%s=%.*s/%zu]", name, (int)len, value, len);
}

static void pairs(void **state)
{
    (void)state;
    struct seen s = {""};
    const char *body = "query=sum+by+%28le%29+%28rate%28x%5B5m%5D%29%29&time=1700000000.5"
                       "&match%5B%5D=up&match%5B%5D=%7Bjob%3D%22a%22%7D&novalue&empty=&bad=%zz%4";
    form_parse(body, strlen(body), add, &s);
    assert_string_equal(s.text, "[query=sum by (le) (rate(x[5m]))/25][time=1700000000.5/12]"
                                "[match[]=up/2][match[]={job=\"a\"}/9][empty=/0][bad=%zz%4/5]");
    struct seen z = {""};
    form_parse("a=x%00y&%00=1", 13, add, &z); /* a NUL in a value has its length; in a name, dropped */
    assert_string_equal(z.text, "[a=x/3]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(pairs)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
