/* The public header compiles alone, with no other include before it. */
#include "querylog.h"

int main(void)
{
	ql_options o = QL_OPTIONS_INIT;
	ql_query q = QL_QUERY_INIT;

	return (o.version == QL_OPTIONS_VERSION &&
		q.version == QL_QUERY_VERSION) ? 0 : 1;
}
