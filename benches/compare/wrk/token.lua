-- POST /oauth/token: client credentials for the demo client `service`, secret in HTTP Basic.
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic c2VydmljZTpzZXJ2aWNlLXNlY3JldA=="
