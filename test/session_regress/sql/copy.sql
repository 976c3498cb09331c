--
-- copy: COPY FROM STDIN / TO STDOUT, formats, errors, transactions
--
CREATE TABLE copy_t (id int, v text, d date);
COPY copy_t FROM STDIN;
1	one	2024-01-01
2	two	\N
3	tab\there	2024-03-03
\.
COPY copy_t (id, v) FROM STDIN WITH (FORMAT csv, HEADER true);
id,v
4,"four, with a comma"
5,"five ""quoted"""
\.
SELECT * FROM copy_t ORDER BY id;
COPY copy_t TO STDOUT;
COPY copy_t TO STDOUT WITH (FORMAT csv, HEADER true, FORCE_QUOTE (v));
COPY (SELECT id, upper(v) FROM copy_t WHERE id > 1 ORDER BY id DESC) TO STDOUT WITH (DELIMITER '|', NULL 'NULL');
COPY (SELECT g, repeat('x', g % 7) FROM generate_series(1, 60) g) TO STDOUT;

-- errors
COPY copy_t FROM STDIN;
6	six	notadate
\.
COPY copy_t FROM STDIN;
7	seven	2024-07-07	extra
\.
-- (psql skips the data of a COPY that fails before it starts)
COPY no_such_table FROM STDIN;
9	nine	2024-09-09
\.
COPY copy_t (no_such_column) FROM STDIN;
9
\.
SELECT count(*) FROM copy_t;

-- in transactions
BEGIN;
COPY copy_t FROM STDIN;
10	ten	2024-10-10
\.
SELECT count(*) FROM copy_t;
ROLLBACK;
SELECT count(*) FROM copy_t;
BEGIN;
COPY copy_t FROM STDIN;
11	eleven	2024-11-11
\.
SAVEPOINT s;
COPY copy_t FROM STDIN;
12	twelve	bad
\.
ROLLBACK TO s;
COPY copy_t (id, v) FROM STDIN;
13	thirteen
\.
COMMIT;
SELECT id, v FROM copy_t WHERE id > 9 ORDER BY id;

-- a larger COPY in and out
CREATE TABLE copy_big (id int, v text);
COPY copy_big FROM STDIN;
1	row-0001-y
2	row-0002-yy
3	row-0003-yyy
4	row-0004-yyyy
5	row-0005-yyyyy
6	row-0006-yyyyyy
7	row-0007-yyyyyyy
8	row-0008-yyyyyyyy
9	row-0009-yyyyyyyyy
10	row-0010-yyyyyyyyyy
11	row-0011-yyyyyyyyyyy
12	row-0012-yyyyyyyyyyyy
13	row-0013-
14	row-0014-y
15	row-0015-yy
16	row-0016-yyy
17	row-0017-yyyy
18	row-0018-yyyyy
19	row-0019-yyyyyy
20	row-0020-yyyyyyy
21	row-0021-yyyyyyyy
22	row-0022-yyyyyyyyy
23	row-0023-yyyyyyyyyy
24	row-0024-yyyyyyyyyyy
25	row-0025-yyyyyyyyyyyy
26	row-0026-
27	row-0027-y
28	row-0028-yy
29	row-0029-yyy
30	row-0030-yyyy
31	row-0031-yyyyy
32	row-0032-yyyyyy
33	row-0033-yyyyyyy
34	row-0034-yyyyyyyy
35	row-0035-yyyyyyyyy
36	row-0036-yyyyyyyyyy
37	row-0037-yyyyyyyyyyy
38	row-0038-yyyyyyyyyyyy
39	row-0039-
40	row-0040-y
41	row-0041-yy
42	row-0042-yyy
43	row-0043-yyyy
44	row-0044-yyyyy
45	row-0045-yyyyyy
46	row-0046-yyyyyyy
47	row-0047-yyyyyyyy
48	row-0048-yyyyyyyyy
49	row-0049-yyyyyyyyyy
50	row-0050-yyyyyyyyyyy
51	row-0051-yyyyyyyyyyyy
52	row-0052-
53	row-0053-y
54	row-0054-yy
55	row-0055-yyy
56	row-0056-yyyy
57	row-0057-yyyyy
58	row-0058-yyyyyy
59	row-0059-yyyyyyy
60	row-0060-yyyyyyyy
61	row-0061-yyyyyyyyy
62	row-0062-yyyyyyyyyy
63	row-0063-yyyyyyyyyyy
64	row-0064-yyyyyyyyyyyy
65	row-0065-
66	row-0066-y
67	row-0067-yy
68	row-0068-yyy
69	row-0069-yyyy
70	row-0070-yyyyy
71	row-0071-yyyyyy
72	row-0072-yyyyyyy
73	row-0073-yyyyyyyy
74	row-0074-yyyyyyyyy
75	row-0075-yyyyyyyyyy
76	row-0076-yyyyyyyyyyy
77	row-0077-yyyyyyyyyyyy
78	row-0078-
79	row-0079-y
80	row-0080-yy
81	row-0081-yyy
82	row-0082-yyyy
83	row-0083-yyyyy
84	row-0084-yyyyyy
85	row-0085-yyyyyyy
86	row-0086-yyyyyyyy
87	row-0087-yyyyyyyyy
88	row-0088-yyyyyyyyyy
89	row-0089-yyyyyyyyyyy
90	row-0090-yyyyyyyyyyyy
91	row-0091-
92	row-0092-y
93	row-0093-yy
94	row-0094-yyy
95	row-0095-yyyy
96	row-0096-yyyyy
97	row-0097-yyyyyy
98	row-0098-yyyyyyy
99	row-0099-yyyyyyyy
100	row-0100-yyyyyyyyy
101	row-0101-yyyyyyyyyy
102	row-0102-yyyyyyyyyyy
103	row-0103-yyyyyyyyyyyy
104	row-0104-
105	row-0105-y
106	row-0106-yy
107	row-0107-yyy
108	row-0108-yyyy
109	row-0109-yyyyy
110	row-0110-yyyyyy
111	row-0111-yyyyyyy
112	row-0112-yyyyyyyy
113	row-0113-yyyyyyyyy
114	row-0114-yyyyyyyyyy
115	row-0115-yyyyyyyyyyy
116	row-0116-yyyyyyyyyyyy
117	row-0117-
118	row-0118-y
119	row-0119-yy
120	row-0120-yyy
121	row-0121-yyyy
122	row-0122-yyyyy
123	row-0123-yyyyyy
124	row-0124-yyyyyyy
125	row-0125-yyyyyyyy
126	row-0126-yyyyyyyyy
127	row-0127-yyyyyyyyyy
128	row-0128-yyyyyyyyyyy
129	row-0129-yyyyyyyyyyyy
130	row-0130-
131	row-0131-y
132	row-0132-yy
133	row-0133-yyy
134	row-0134-yyyy
135	row-0135-yyyyy
136	row-0136-yyyyyy
137	row-0137-yyyyyyy
138	row-0138-yyyyyyyy
139	row-0139-yyyyyyyyy
140	row-0140-yyyyyyyyyy
141	row-0141-yyyyyyyyyyy
142	row-0142-yyyyyyyyyyyy
143	row-0143-
144	row-0144-y
145	row-0145-yy
146	row-0146-yyy
147	row-0147-yyyy
148	row-0148-yyyyy
149	row-0149-yyyyyy
150	row-0150-yyyyyyy
151	row-0151-yyyyyyyy
152	row-0152-yyyyyyyyy
153	row-0153-yyyyyyyyyy
154	row-0154-yyyyyyyyyyy
155	row-0155-yyyyyyyyyyyy
156	row-0156-
157	row-0157-y
158	row-0158-yy
159	row-0159-yyy
160	row-0160-yyyy
161	row-0161-yyyyy
162	row-0162-yyyyyy
163	row-0163-yyyyyyy
164	row-0164-yyyyyyyy
165	row-0165-yyyyyyyyy
166	row-0166-yyyyyyyyyy
167	row-0167-yyyyyyyyyyy
168	row-0168-yyyyyyyyyyyy
169	row-0169-
170	row-0170-y
171	row-0171-yy
172	row-0172-yyy
173	row-0173-yyyy
174	row-0174-yyyyy
175	row-0175-yyyyyy
176	row-0176-yyyyyyy
177	row-0177-yyyyyyyy
178	row-0178-yyyyyyyyy
179	row-0179-yyyyyyyyyy
180	row-0180-yyyyyyyyyyy
181	row-0181-yyyyyyyyyyyy
182	row-0182-
183	row-0183-y
184	row-0184-yy
185	row-0185-yyy
186	row-0186-yyyy
187	row-0187-yyyyy
188	row-0188-yyyyyy
189	row-0189-yyyyyyy
190	row-0190-yyyyyyyy
191	row-0191-yyyyyyyyy
192	row-0192-yyyyyyyyyy
193	row-0193-yyyyyyyyyyy
194	row-0194-yyyyyyyyyyyy
195	row-0195-
196	row-0196-y
197	row-0197-yy
198	row-0198-yyy
199	row-0199-yyyy
200	row-0200-yyyyy
201	row-0201-yyyyyy
202	row-0202-yyyyyyy
203	row-0203-yyyyyyyy
204	row-0204-yyyyyyyyy
205	row-0205-yyyyyyyyyy
206	row-0206-yyyyyyyyyyy
207	row-0207-yyyyyyyyyyyy
208	row-0208-
209	row-0209-y
210	row-0210-yy
211	row-0211-yyy
212	row-0212-yyyy
213	row-0213-yyyyy
214	row-0214-yyyyyy
215	row-0215-yyyyyyy
216	row-0216-yyyyyyyy
217	row-0217-yyyyyyyyy
218	row-0218-yyyyyyyyyy
219	row-0219-yyyyyyyyyyy
220	row-0220-yyyyyyyyyyyy
221	row-0221-
222	row-0222-y
223	row-0223-yy
224	row-0224-yyy
225	row-0225-yyyy
226	row-0226-yyyyy
227	row-0227-yyyyyy
228	row-0228-yyyyyyy
229	row-0229-yyyyyyyy
230	row-0230-yyyyyyyyy
231	row-0231-yyyyyyyyyy
232	row-0232-yyyyyyyyyyy
233	row-0233-yyyyyyyyyyyy
234	row-0234-
235	row-0235-y
236	row-0236-yy
237	row-0237-yyy
238	row-0238-yyyy
239	row-0239-yyyyy
240	row-0240-yyyyyy
241	row-0241-yyyyyyy
242	row-0242-yyyyyyyy
243	row-0243-yyyyyyyyy
244	row-0244-yyyyyyyyyy
245	row-0245-yyyyyyyyyyy
246	row-0246-yyyyyyyyyyyy
247	row-0247-
248	row-0248-y
249	row-0249-yy
250	row-0250-yyy
251	row-0251-yyyy
252	row-0252-yyyyy
253	row-0253-yyyyyy
254	row-0254-yyyyyyy
255	row-0255-yyyyyyyy
256	row-0256-yyyyyyyyy
257	row-0257-yyyyyyyyyy
258	row-0258-yyyyyyyyyyy
259	row-0259-yyyyyyyyyyyy
260	row-0260-
261	row-0261-y
262	row-0262-yy
263	row-0263-yyy
264	row-0264-yyyy
265	row-0265-yyyyy
266	row-0266-yyyyyy
267	row-0267-yyyyyyy
268	row-0268-yyyyyyyy
269	row-0269-yyyyyyyyy
270	row-0270-yyyyyyyyyy
271	row-0271-yyyyyyyyyyy
272	row-0272-yyyyyyyyyyyy
273	row-0273-
274	row-0274-y
275	row-0275-yy
276	row-0276-yyy
277	row-0277-yyyy
278	row-0278-yyyyy
279	row-0279-yyyyyy
280	row-0280-yyyyyyy
281	row-0281-yyyyyyyy
282	row-0282-yyyyyyyyy
283	row-0283-yyyyyyyyyy
284	row-0284-yyyyyyyyyyy
285	row-0285-yyyyyyyyyyyy
286	row-0286-
287	row-0287-y
288	row-0288-yy
289	row-0289-yyy
290	row-0290-yyyy
291	row-0291-yyyyy
292	row-0292-yyyyyy
293	row-0293-yyyyyyy
294	row-0294-yyyyyyyy
295	row-0295-yyyyyyyyy
296	row-0296-yyyyyyyyyy
297	row-0297-yyyyyyyyyyy
298	row-0298-yyyyyyyyyyyy
299	row-0299-
300	row-0300-y
\.
INSERT INTO copy_big SELECT g, repeat(md5(g::text), 4) FROM generate_series(301, 3000) g;
COPY (SELECT * FROM copy_big ORDER BY id) TO STDOUT \g /dev/null
SELECT count(*), sum(length(v)), max(id) FROM copy_big;
COPY (SELECT * FROM copy_big WHERE id % 250 = 0 ORDER BY id) TO STDOUT;
DROP TABLE copy_t, copy_big;
