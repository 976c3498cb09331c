/*-------------------------------------------------------------------------
 *
 * statements_scan.h
 *	  pg_prepared_statements through the pool; see statements_scan.c.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STATEMENTS_SCAN_H
#define STATEMENTS_SCAN_H

extern void bp_statements_scan_init(void);

#endif							/* STATEMENTS_SCAN_H */
