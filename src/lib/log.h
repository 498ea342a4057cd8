/* Logging to stderr with a timestamp and a level; safe from any thread. */
#ifndef GF_LOG_H
#define GF_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Parses "debug", "info", "warn" or "error"; returns 0, or -1 for anything
 * else (level untouched). */
int log_level_parse(const char *name, enum log_level *level);

/* Messages below this level are dropped (default LOG_INFO). */
void log_set_level(enum log_level level);

/* printf-style; a newline is added. Never pass secrets (tokens, passwords). */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
