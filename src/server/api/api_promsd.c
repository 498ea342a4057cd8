/* /api/v1/prometheus/sd: the fleet as Prometheus's HTTP service discovery
 * (and, with ?format=file, the same JSON as a file_sd download). */
#include <string.h>

#include "../promsd.h"
#include "api.h"

void api_promsd(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    const char *format = http_query(req, "format");

    if (format && strcmp(format, "file") && strcmp(format, "http")) {
        http_error(resp, 400, "invalid_field", "format", "format is http (the default) or file");
        return;
    }
    if (format && !strcmp(format, "file"))
        http_add_header(resp, "Content-Disposition", "attachment; filename=\"gpufleet-sd.json\"");
    api_json(resp, 200, promsd_groups(app->reg));
}
