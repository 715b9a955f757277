/*
 * e911-agent's config_site.h for pjproject: an embedded SIP endpoint (one desk
 * phone, a handful of calls, audio only). scripts/build-pjproject.mjs copies it
 * to pjlib/include/pj/config_site.h before configuring; a change here changes
 * the build's cache key, so the next setup rebuilds pjproject.
 */
#ifndef E911_PJ_CONFIG_SITE_H
#define E911_PJ_CONFIG_SITE_H

/* Audio only: no video code, whatever configure finds on the build machine. */
#define PJMEDIA_HAS_VIDEO                 0

/* A phone: a few accounts and calls (the agent allows up to 16 + 2 emergency
 * slots, see agent/emergency/config.ts), no presence buddy list to speak of. */
#define PJSUA_MAX_ACC                     8
#define PJSUA_MAX_CALLS                   32
#define PJSUA_MAX_BUDDIES                 8
#define PJSUA_MAX_PLAYERS                 8
#define PJSUA_MAX_RECORDERS               8
#define PJSUA_MAX_CONF_PORTS              (PJSUA_MAX_CALLS + PJSUA_MAX_PLAYERS + PJSUA_MAX_RECORDERS + 8)

/* Sockets: SIP transports plus two per call (RTP, RTCP) for 32 calls, with
 * room to spare (the default, 64, is too few for PJSUA_MAX_CALLS). */
#define PJ_IOQUEUE_MAX_HANDLES            256

/* Transaction and dialog tables keep their defaults (1023, 511): finished
 * UDP transactions linger 32 s, and a burst of test or bench calls must not
 * run out of them. */

/* SRTP is wanted (SIP over TLS carries its keys); keep it even if a future
 * default changes. */
#define PJMEDIA_HAS_SRTP                  1

/* Keep the full log: pjsip's lines go into the agent's structured log, and a
 * failed 911 is diagnosed from them. The level is chosen at run time. */
#define PJ_LOG_MAX_LEVEL                  5

#endif
