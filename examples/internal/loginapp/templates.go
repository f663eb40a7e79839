package loginapp

import "html/template"

// layout is shared by every page; each page defines "content". The user
// name and flashes are marked with ids so tests can find them.
const layout = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}} · httpsession login example</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; }
nav { display: flex; gap: 1rem; align-items: center; border-bottom: 1px solid #ccc; padding-bottom: .5rem; }
nav form { margin-left: auto; }
.flash { background: #eef6ff; border: 1px solid #9cf; padding: .5rem; }
.error { background: #fee; border: 1px solid #f99; padding: .5rem; }
.notice { background: #ffd; border: 1px solid #cc9; padding: .5rem; }
label { display: block; margin: .5rem 0; }
</style>
</head>
<body>
<nav>
<a href="/">Home</a>
<a href="/account">Account</a>
{{if .User}}<span>Signed in as <b id="user">{{.User}}</b></span>
<form method="post" action="/logout"><button>Log out</button></form>
{{else}}<span><b id="user">Anonymous</b></span>
<a href="/login">Log in</a>
{{end}}</nav>
{{range .Flashes}}<p class="flash">{{.}}</p>
{{end}}<main>
{{template "content" .}}
</main>
</body>
</html>
`

var (
	homePage = parsePage(`
<h1>Home</h1>
{{if .User}}<p>Hello, {{.User}}. Your <a href="/account">account page</a> is open to you.</p>
{{else}}<p>Hello, stranger. The <a href="/account">account page</a> needs you to <a href="/login">log in</a>
(try alice / wonderland or bob / builder).</p>
{{end}}`)

	loginPage = parsePage(`
<h1>Log in</h1>
{{if .Notice}}<p class="notice">{{.Notice}}</p>
{{end}}{{if .Error}}<p class="error">{{.Error}}</p>
{{end}}<form method="post" action="/login">
{{if .Next}}<input type="hidden" name="next" value="{{.Next}}">
{{end}}
<label>User name <input name="username" value="{{.Username}}" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<label><input name="remember" type="checkbox" value="1"> Remember me for 30 days</label>
<button>Log in</button>
</form>`)

	accountPage = parsePage(`
<h1>Account</h1>
<p>This page is only for signed-in users. You are <b>{{.User}}</b>.</p>
<p>Session started <span id="created">{{.Created}}</span>,
ends <span id="expires">{{.Expires}}</span> at the latest.</p>`)
)

// parsePage returns the layout with content as its "content" template.
func parsePage(content string) *template.Template {
	t := template.Must(template.New("layout").Parse(layout))
	template.Must(t.New("content").Parse(content))
	return t
}
