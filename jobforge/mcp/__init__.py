"""`jobforge mcp`: the queue served to AI agents over the Model Context Protocol.

Glue over the library, beside `cli/`: `binding` says which tenant and actor a connection acts
for (the server's configuration, or a bearer token's entry in a tokens file; never a tool
argument), `tools` is each tool as a call of the queue client with its structured result, and
`server` builds the MCP server (the official SDK's `MCPServer`) and runs it over stdio or
streamable HTTP. The SDK is an extra (`pip install 'jobforge[mcp]'`): nothing else imports it.
"""
