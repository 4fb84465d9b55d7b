def test_home_renders(client):
    resp = client.get("/")
    assert resp.status_code == 200
    assert "ptmatch" in resp.get_data(as_text=True)
