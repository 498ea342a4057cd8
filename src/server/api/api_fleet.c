/* /api/v1/fleet: every registered server with its live state, the snapshot
 * the web UI starts from before applying /api/v1/live deltas. */
#include "../fleet.h"
#include "api.h"

void api_fleet(void *appv, struct http_request *req, struct http_response *resp)
{
    struct server_app *app = appv;
    (void)req;
    /* read the sequence first: a delta racing this snapshot is then applied
     * again by the client, which is harmless (deltas carry values) */
    uint64_t seq = fleet_seq(app->fleet);
    json_t *servers = reg_list(app->reg), *s;
    size_t i;

    json_array_foreach(servers, i, s) {
        json_t *live = fleet_server_json(app->fleet, json_string_value(json_object_get(s, "name")));
        json_object_set_new(s, "live", live ? live : json_null());
    }
    api_json(resp, 200, json_pack("{s:I, s:o}", "seq", (json_int_t)seq, "servers", servers));
}
