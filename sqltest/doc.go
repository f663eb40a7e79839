// Package sqltest holds the tests of httpsession's SQLBackend on real
// databases: PostgreSQL (through pgx's database/sql driver), MariaDB or
// MySQL (go-sql-driver/mysql) and SQLite (modernc.org/sqlite, no cgo). It is
// a module of its own so that the library's go.mod names no SQL driver.
//
// scripts/testenv.sh starts PostgreSQL and MariaDB and exports
// HTTPSESSION_POSTGRES_DSN and HTTPSESSION_MYSQL_DSN; without them those
// tests skip, except under CI=true, where they fail. SQLite needs nothing.
package sqltest
