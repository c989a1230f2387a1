"""B3 (Brasil, Bolsa, Balcão): equities and indices through brapi's HTTP API, on B3's trading
sessions. ``calendar`` holds the sessions and holidays, ``brapi`` the client and the venue."""
