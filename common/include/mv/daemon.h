/* What every daemon shares: SIGTERM/SIGINT turn into a stop request the main loop polls. */
#ifndef MV_DAEMON_H
#define MV_DAEMON_H

#include <stdbool.h>

void mv_daemon_handle_signals(void); /* SIGTERM, SIGINT -> stop; SIGPIPE ignored */
bool mv_daemon_stop_requested(void);
void mv_daemon_request_stop(void);
int mv_daemon_stop_eventfd(void); /* readable once a stop was requested; for poll loops */

#endif
