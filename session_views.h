/*-------------------------------------------------------------------------
 *
 * session_views.h
 *	  pg_prepared_statements and pg_settings through the pool; see
 *	  session_views.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SESSION_VIEWS_H
#define SESSION_VIEWS_H

extern void bp_session_views_init(void);

#endif							/* SESSION_VIEWS_H */
