/* Loads libnvidia-ml at run time so one agent binary runs with and without the
 * NVIDIA driver installed. */
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "nvml_api.h"

int nvml_api_load(struct nvml_api *api, const char *path, char *err, size_t errlen)
{
    memset(api, 0, sizeof(*api));
    if (!path || !*path)
        path = "libnvidia-ml.so.1";
    api->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!api->dl) {
        const char *why = dlerror();
        snprintf(err, errlen, "cannot load %s: %s", path, why ? why : "unknown error");
        return -1;
    }
#define NVML_API_RESOLVE(name, req, ret, params)                                                   \
    *(void **)(&api->name) = dlsym(api->dl, #name);                                                \
    if ((req) && !api->name) {                                                                     \
        snprintf(err, errlen, "%s lacks %s (driver too old?)", path, #name);                      \
        nvml_api_unload(api);                                                                      \
        return -1;                                                                                 \
    }
    NVML_FUNCTIONS(NVML_API_RESOLVE)
#undef NVML_API_RESOLVE
    return 0;
}

void nvml_api_unload(struct nvml_api *api)
{
    if (api->dl)
        dlclose(api->dl);
    memset(api, 0, sizeof(*api));
}
