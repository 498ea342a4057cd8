/* BMC hardware health over IPMI-over-LAN (FreeIPMI's libipmimonitoring):
 * each server's BMC polled on its own thread, its sensors stored as series
 * with the prometheus-community ipmi_exporter's names
 * (ipmi_temperature_celsius, ipmi_fan_speed_rpm, ipmi_voltage_volts,
 * ipmi_current_amperes, ipmi_power_watts, each with its _state: 0 nominal,
 * 1 warning, 2 critical; ipmi_sensor_value/ipmi_sensor_state for the rest;
 * ipmi_up), labels job="ipmi", instance (the BMC), server, id, name. The
 * BMC settings live in DATA/bmc.db; passwords are write-only; a server
 * removed from the registry takes its BMC with it at the next round. */
#ifndef GF_BMC_H
#define GF_BMC_H

#include <jansson.h>
#include <stdint.h>

#include "../lib/errinfo.h"

struct server_app;
struct bmc;

/* Opens path (creating it) and starts polling every interval_ms. NULL with
 * err on failure. */
struct bmc *bmc_start(const char *path, struct server_app *app, int64_t interval_ms, char *err, size_t errlen);
void bmc_stop(struct bmc *b);

/* Sets a server's BMC from {"address","user","password"} (address as
 * host or host:port; password kept when absent): 0, or -1 with err naming
 * the field. */
int bmc_set(struct bmc *b, const char *server, const json_t *body, struct errinfo *err);
/* Forgets a server's BMC: 0, or -1 (404) when it had none. */
int bmc_delete(struct bmc *b, const char *server, struct errinfo *err);

/* Every BMC: {"server","address","user","password_set","status"
 * ("ok"|"down"|"unknown"),"detail","last_poll_ms","sensors"}. New reference. */
json_t *bmc_list(struct bmc *b);

#endif
